"""Which conditions are safe to push (adapters/pushdown.py) and what an API is sent (adapters/negotiation.py)."""

from __future__ import annotations

import datetime as dt

import sqlglot
from sqlglot import exp

from adapters.base import ParameterSpec, SourceQuery
from adapters.negotiation import Offer, Pushed, negotiate, plan_requests
from adapters.pushdown import Condition, pushable_conditions
from schema.types import ColumnType


def _conditions(sql: str, table: str = "people", **lists: bool) -> list[Condition]:
    select = sqlglot.parse_one(sql, read="sqlite")
    assert isinstance(select, exp.Select)
    specs = {name: ParameterSpec(ColumnType.STRING, is_list=True) for name in lists}
    return pushable_conditions(SourceQuery("d", select, (), specs), table)


def test_top_level_conjuncts_on_raw_columns_against_values() -> None:
    conditions = _conditions(
        "SELECT p.a FROM people AS p WHERE p.a = :p0 AND 3 < p.b AND p.c IN (:p1) AND p.d IN ('x', 'y') "
        "AND (p.e = 1 OR p.f = 2) AND NOT p.g = 4 AND p.h = p.i AND LOWER(p.j) = 'k' AND p.k >= 2.5 AND p.l = TRUE",
        p1=True,
    )
    assert conditions == [
        Condition("a", "eq", parameter="p0"),
        Condition("b", "gt", values=(3,)),
        Condition("c", "in", parameter="p1"),
        Condition("d", "in", values=("x", "y")),
        Condition("k", "gte", values=(2.5,)),
        Condition("l", "eq", values=(True,)),
    ]


def test_a_masked_column_is_never_pushed_but_the_row_filter_is() -> None:
    # The policy's subquery: nhs_number is masked, person_id passes through, status filters raw rows.
    conditions = _conditions(
        "SELECT people.person_id FROM (SELECT '****' || SUBSTR(people.nhs_number, -4) AS nhs_number, "
        "people.person_id AS person_id FROM people AS people WHERE people.status = 'open') AS people "
        "WHERE people.nhs_number = :p0 AND people.person_id = :p1"
    )
    assert conditions == [Condition("status", "eq", values=("open",)), Condition("person_id", "eq", parameter="p1")]


def test_nothing_above_a_page_or_a_window_is_pushed() -> None:
    windowed = _conditions(
        "SELECT pg.person_id FROM (SELECT v.person_id, v.kind, ROW_NUMBER() OVER (PARTITION BY v.person_id) AS rn "
        "FROM visits AS v WHERE v.person_id IN (:p0)) AS pg WHERE pg.rn <= :p1 AND pg.kind = :p2",
        table="visits",
        p0=True,
    )
    assert windowed == [Condition("person_id", "in", parameter="p0")]
    paged = _conditions("SELECT x.a FROM (SELECT p.a FROM people AS p LIMIT 5) AS x WHERE x.a = :p0")
    assert paged == []


def test_other_shapes_push_nothing() -> None:
    assert _conditions("SELECT p.a FROM people AS p JOIN other AS o ON p.a = o.a WHERE p.a = :p0") == []
    assert _conditions("SELECT p.a FROM other AS p WHERE p.a = :p0") == []


OFFERS = [
    Offer("id", "eq", "id", 1, None),
    Offer("nhs", "in", "nhs", 2, None),
    Offer("born", "gte", "born_from", 1, None),
    Offer("kind", "in", "kinds", 10, None),
]


def test_negotiation_matches_column_and_operator() -> None:
    conditions = [
        Condition("id", "in", parameter="ids"),  # an eq offer, usable when one value is bound
        Condition("nhs", "eq", parameter="one"),  # an in offer serves eq
        Condition("born", "gt", parameter="after"),  # no gt offer: not pushed (gte is not gt)
        Condition("name", "eq", parameter="n"),  # no offer at all
    ]
    negotiated = negotiate(conditions, OFFERS)
    assert [(item.condition.column, [offer.key for offer in item.offers]) for item in negotiated] == [
        ("id", ["id"]),
        ("nhs", ["nhs"]),
    ]
    one = plan_requests(negotiated, {"ids": ["p1"], "one": "999"})
    assert one.requests == ((Pushed(OFFERS[0], ("p1",)), Pushed(OFFERS[1], ("999",))),)
    # Two ids cannot go through an eq parameter: only the NHS number is pushed.
    two = plan_requests(negotiated, {"ids": ["p1", "p2"], "one": "999"})
    assert two.requests == ((Pushed(OFFERS[1], ("999",)),),)


def test_long_lists_are_split_nones_dropped_and_empty_lists_skip_the_api() -> None:
    negotiated = negotiate([Condition("nhs", "in", parameter="keys"), Condition("born", "gte", parameter="d")], OFFERS)
    plan = plan_requests(negotiated, {"keys": ["a", None, "b", "a", "c", "d", "e"], "d": dt.date(2000, 1, 1)})
    born = Pushed(OFFERS[2], (dt.date(2000, 1, 1),))
    assert plan.requests == (
        (born, Pushed(OFFERS[1], ("a", "b"))),
        (born, Pushed(OFFERS[1], ("c", "d"))),
        (born, Pushed(OFFERS[1], ("e",))),
    )
    assert plan_requests(negotiated, {"keys": [None], "d": None}).empty
    # A None value is not pushed at all.
    assert plan_requests(negotiated, {"keys": ["a"], "d": None}).requests == ((Pushed(OFFERS[1], ("a",)),),)


def test_each_parameter_is_sent_once_and_only_one_list_is_split() -> None:
    negotiated = negotiate(
        [
            Condition("nhs", "in", parameter="k1"),
            Condition("nhs", "in", parameter="k2"),
            Condition("kind", "in", values=tuple(f"k{i}" for i in range(12))),
        ],
        OFFERS,
    )
    plan = plan_requests(negotiated, {"k1": ["a", "b", "c"], "k2": ["b"]})
    # k1 is split over 'nhs'; k2 would need 'nhs' again; the 12 kinds would need a second split.
    assert plan.requests == ((Pushed(OFFERS[1], ("a", "b")),), (Pushed(OFFERS[1], ("c",)),))


def test_an_adapter_may_refuse_values() -> None:
    negotiated = negotiate([Condition("nhs", "in", parameter="k")], OFFERS)
    plan = plan_requests(negotiated, {"k": ["a,b", "c"]}, lambda offer, values: all("," not in v for v in values))
    assert plan.requests == ((),)
