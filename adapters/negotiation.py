"""Which of a statement's pushable conditions an API applies, and how many requests that takes.

In the spirit of Trino's filter negotiation: :func:`adapters.pushdown.pushable_conditions` says what
would be *safe* to push; the table's mapping says what the API *offers* (``filters`` of a REST endpoint,
``arguments`` of a remote GraphQL field). A condition is pushed when an offer has the same column and
operator; an ``in`` offer also serves ``eq`` (one value) and an ``eq`` offer serves an ``in`` holding
exactly one value. Whatever is pushed, fedgate evaluates the whole statement again on the rows it gets
(:mod:`adapters.residual`), so an API that ignores or loosens a filter costs bandwidth, never correctness.

At fetch time, with the values bound (:func:`plan_requests`):

* a condition whose value is ``None`` is not pushed (``col = NULL`` matches nothing in SQL; the
  residual statement says so);
* an ``in`` list loses its ``None``\\ s and duplicates; an empty list means no row can match, and the
  API is not called at all;
* each offer (query parameter, argument) is used once per request;
* an ``in`` list longer than the offer's ``max_values`` is split into several requests whose rows are
  united (one list per fetch is split; another long list is left to the residual evaluation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.pushdown import Condition, Operator


@dataclass(frozen=True, slots=True)
class Offer:
    """A filter the API declares: ``column operator value`` is sent as ``key`` (a parameter or argument)."""

    column: str
    operator: Operator
    key: str
    max_values: int
    #: The catalog declaration (a ``RestFilter`` or ``GraphQLArgument``).
    declaration: Any


@dataclass(frozen=True, slots=True)
class Negotiated:
    """A pushable condition and the offers that may carry it, best first."""

    condition: Condition
    offers: tuple[Offer, ...]


@dataclass(frozen=True, slots=True)
class Pushed:
    """A filter sent in one request: the offer and the value(s) (several only for ``in``)."""

    offer: Offer
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """The requests of one fetch, each with the filters it sends; ``empty``: no row can match."""

    requests: tuple[tuple[Pushed, ...], ...]
    empty: bool = False


def _serves(offer: Offer, condition: Condition) -> bool:
    return offer.column == condition.column and (
        offer.operator == condition.operator or {offer.operator, condition.operator} == {"eq", "in"}
    )


def negotiate(conditions: Sequence[Condition], offers: Sequence[Offer]) -> list[Negotiated]:
    """The conditions some offer can carry, each with its candidate offers (same operator first)."""
    negotiated = []
    for condition in conditions:
        candidates = sorted(
            (offer for offer in offers if _serves(offer, condition)),
            key=lambda offer: offer.operator != condition.operator,
        )
        if candidates:
            negotiated.append(Negotiated(condition, tuple(candidates)))
    return negotiated


def _distinct(values: Sequence[Any]) -> list[Any]:
    seen: set[Any] = set()
    distinct = []
    for value in values:
        if value is not None and value not in seen:
            seen.add(value)
            distinct.append(value)
    return distinct


def plan_requests(
    negotiated: Sequence[Negotiated],
    bound: Mapping[str, Any],
    accepts: Callable[[Offer, Sequence[Any]], bool] = lambda offer, values: True,
) -> RequestPlan:
    """The requests for one fetch with ``bound`` parameter values.

    ``accepts`` lets an adapter refuse values an offer cannot carry (a comma inside a comma-separated list).
    """
    fixed: list[Pushed] = []
    split: tuple[Offer, list[Any]] | None = None
    used: set[str] = set()
    for item in negotiated:
        condition = item.condition
        values = condition.resolve(bound)
        if condition.operator == "in":
            values = _distinct(values)
            if not values:
                return RequestPlan((), empty=True)
        elif not values or values[0] is None:
            continue
        for offer in item.offers:
            if offer.key in used or (offer.operator != "in" and len(values) != 1) or not accepts(offer, values):
                continue
            if offer.operator == "in" and len(values) > offer.max_values:
                if split is not None:
                    continue
                split = (offer, values)
            else:
                fixed.append(Pushed(offer, tuple(values)))
            used.add(offer.key)
            break
    if split is None:
        return RequestPlan((tuple(fixed),))
    offer, values = split
    chunks = [values[start : start + offer.max_values] for start in range(0, len(values), offer.max_values)]
    return RequestPlan(tuple((*fixed, Pushed(offer, tuple(chunk))) for chunk in chunks))


def describe_pushed(negotiated: Sequence[Negotiated]) -> list[tuple[Offer, str]]:
    """For ``explain``: each condition's first offer and where its value comes from (``{:p3}``, a literal)."""
    described = []
    used: set[str] = set()
    for item in negotiated:
        offer = next((offer for offer in item.offers if offer.key not in used), None)
        if offer is None:
            continue
        used.add(offer.key)
        condition = item.condition
        if condition.parameter is not None:
            described.append((offer, f"{{:{condition.parameter}}}"))
        else:
            described.append((offer, "{" + ", ".join(repr(value) for value in condition.values) + "}"))
    return described
