"""What an answer disclosed: every object noted when nothing was left out, and only those the answer
holds once something may have been (the answer is then walked)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from gateway.execution.disclosure import Disclosure
from gateway.plan.nodes import ScanNode, SubjectColumn


class _Scan(SimpleNamespace):
    """A stand-in for a scan: hashed by identity, as scans are."""

    __hash__ = object.__hash__


#: A statement of ``clinic.people`` reading (person_id, nhs_number), the second column naming the person.
SCAN = cast(
    ScanNode,
    _Scan(
        query=SimpleNamespace(columns=[SimpleNamespace(name="person_id"), SimpleNamespace(name="nhs_number")]),
        fields=[SimpleNamespace(kind="column", index=0), SimpleNamespace(kind="column", index=1)],
        subjects=(SubjectColumn(1, "nhs_number", "nhs_number"),),
        department=SimpleNamespace(name="clinic"),
        table=SimpleNamespace(name="people"),
    ),
)
ROWS = [("p1", "9990000001"), ("p2", "9990000002"), ("p3", "9990000003")]


def _noted(disclosure: Disclosure) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = [{"personId": row[0]} for row in ROWS]
    disclosure.note_rows(objects, SCAN, ROWS)
    return objects


def test_with_nothing_left_out_every_object_noted_is_disclosed() -> None:
    disclosure = Disclosure()
    objects = _noted(disclosure)
    summary = disclosure.summary({"people": objects})
    assert summary.rows == {("clinic", "people"): 3}
    assert summary.subjects == {"nhs_number": {"9990000001", "9990000002", "9990000003"}}
    assert summary.columns == {("clinic", "people"): {"person_id", "nhs_number"}}


def test_once_an_object_may_be_left_out_only_those_the_answer_holds_are_disclosed() -> None:
    disclosure = Disclosure()
    objects = _noted(disclosure)
    disclosure.may_leave_out()  # a field holding one was given all three: the answer shows the first
    summary = disclosure.summary({"person": objects[0]})
    assert summary.rows == {("clinic", "people"): 1}
    assert summary.subjects == {"nhs_number": {"9990000001"}}


def test_after_a_failure_the_answer_is_walked_too() -> None:
    disclosure = Disclosure()
    objects = _noted(disclosure)
    summary = disclosure.summary({"people": [objects[0], None, objects[2]]}, failed=True)
    assert summary.rows == {("clinic", "people"): 2}
    assert summary.subjects == {"nhs_number": {"9990000001", "9990000003"}}
