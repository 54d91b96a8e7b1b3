"""An event's body, written from canonical fragments (some kept from request to request), is RFC 8785's
canonical JSON of the event, byte for byte, as the reference implementation writes it from the event spelled
out here; the columns derived from it are the event's.

The facts are generated, texts beyond the Basic Multilingual Plane included (where RFC 8785's key order
differs from code point order), and the same callers come back with other facts, so a fragment kept for one
event and wrongly reused for another is caught.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.record import disclosed_part, entry
from gateway.policy.purposes import Purpose
from gateway.principal import Principal

texts = st.text(max_size=12)
maybe = st.none() | texts
#: Few distinct callers, so the same caller is met again with other facts.
callers = st.tuples(
    st.sampled_from(["alice", "bob", "\U0001f600"]),
    st.sampled_from([None, "app", "ｱプリ"]),
    st.sampled_from([None, "ORG-1", ["not", "text"]]),
    st.sampled_from([None, "clinician", ["a", "list"]]),
    st.none() | st.tuples(st.sampled_from(["direct_care", "planning"]), st.sampled_from(["token", "header"]), maybe),
)
tables = st.tuples(
    texts,
    st.dictionaries(texts, st.none() | texts, max_size=3),
    st.lists(texts, max_size=2),
    st.lists(texts, max_size=2),
    st.integers(0, 10_000),
)

outcomes = st.fixed_dictionaries({"status": texts, "code": maybe, "statements": st.integers(0, 9)})
bulks = st.fixed_dictionaries(
    {"count": st.integers(0, 10**6), "cap": st.integers(0, 10**6), "filter": st.lists(texts, max_size=2)}
)


@settings(max_examples=300)
@given(
    caller=callers,
    time=texts,
    request_id=maybe,
    query=maybe,
    operation_name=maybe,
    status=st.sampled_from(["ok", "partial", "refused", "failed"]),
    code=maybe,
    agreements=st.lists(st.tuples(st.sampled_from(["ISA-1", "ISA-\U0001f4c4"]), st.integers(1, 3)), max_size=3),
    departments=st.dictionaries(texts, outcomes, max_size=3),
    disclosed=st.lists(tables, max_size=3),
    subjects=st.dictionaries(texts, st.lists(texts, max_size=3), max_size=2),
    bulk=st.none() | bulks,
)
def test_the_body_is_the_canonical_json_of_the_event(
    caller: tuple[str, str | None, Any, Any, tuple[str, str, str | None] | None],
    time: str,
    request_id: str | None,
    query: str | None,
    operation_name: str | None,
    status: str,
    code: str | None,
    agreements: list[tuple[str, int]],
    departments: dict[str, dict[str, Any]],
    disclosed: list[tuple[str, dict[str, str | None], list[str], list[str], int]],
    subjects: dict[str, list[str]],
    bulk: dict[str, Any] | None,
) -> None:
    subject, client_id, organisation, role, stated = caller
    purpose = Purpose(stated[0], stated[1], stated[2]) if stated is not None else None  # type: ignore[arg-type]
    principal = Principal(
        subject=subject, client_id=client_id, issuer="https://idp.example", attributes={"org": organisation,
        "role": role}, authenticated=True, purpose=purpose,
    )  # fmt: skip
    made = entry(
        time=time, request_id=request_id, principal=principal, organisation_attribute="org", query=query,
        operation_name=operation_name, status=status, code=code, agreements=agreements, departments=departments,
        disclosed=[disclosed_part(*table) for table in disclosed], subjects=subjects, bulk=bulk,
    )  # fmt: skip
    event_id = orjson.loads(made.body)["event_id"]
    expected = {
        "event_id": event_id,
        "time": time,
        "request_id": request_id,
        "principal": {
            "subject": subject,
            "client_id": client_id,
            "organisation": organisation if isinstance(organisation, str) else None,
            "role": role if isinstance(role, str) else None,
            "issuer": "https://idp.example",
        },
        "purpose": {"name": stated[0], "source": stated[1], "justification": stated[2]} if stated else None,
        "agreements": [{"id": identifier, "version": version} for identifier, version in sorted(set(agreements))],
        "operation": {
            "name": operation_name,
            "document_sha256": hashlib.sha256(query.encode()).hexdigest() if query is not None else None,
        },
        "outcome": {"status": status, "code": code},
        "departments": departments,
        "disclosed": [
            {"table": table, "columns": columns, "grants": grants, "agreements": admitted, "rows": rows}
            for table, columns, grants, admitted, rows in disclosed
        ],
        "subjects": subjects,
        "bulk": bulk,
    }
    assert made.body == rfc8785.dumps(expected)
    assert made.columns == (
        event_id,
        time,
        client_id,
        organisation if isinstance(organisation, str) else None,
        stated[0] if stated else None,
        status,
    )


def test_each_event_has_its_own_id() -> None:
    principal = Principal(subject="alice", authenticated=True)
    facts: dict[str, Any] = {"time": "t", "request_id": "r", "principal": principal, "organisation_attribute": "org",
                             "query": "{ a }", "operation_name": None, "status": "ok", "code": None}  # fmt: skip
    first, second = entry(**facts), entry(**facts)
    assert first.columns[0] != second.columns[0]
    assert first.body.replace(first.columns[0].encode(), b"") == second.body.replace(second.columns[0].encode(), b"")
