"""Access under agreements: what the caller's scopes grant *and* an agreement in force covers.

For each grant of the caller's scopes and each agreement in force for the caller's organisation and the
request's purpose that shares the grant's table, the caller gets the intersection (a *covered grant*):

* the columns both list;
* the rows both admit (the grant's row filter and the agreement's row condition);
* each column masked by the stricter of the two masks (:func:`stricter`).

The covered grants of all such pairs are the caller's grants, with the usual meaning of several grants
on one table (a row is visible if any admits it; a cell shows the least-masked value among those that
do). A column no covering agreement lists is therefore invisible exactly as an ungranted one is, and a
table no agreement covers is not readable at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from gateway.policy.access import CompiledGrant
from gateway.policy.agreements import Agreement
from gateway.policy.expressions import conjunction
from gateway.policy.masks import Mask

#: What the caller sees of a column two masks disagree about: nothing.
NOTHING = Mask("null")

#: Masks of one kind that reveal less the smaller their number is.
_FEWER_IS_STRICTER = frozenset({"show_last", "show_first", "round"})
#: Date truncations, coarsest first: a coarser one is a function of a finer one.
_DATES = ("year_only", "month_only")


def stricter(first: Mask | None, second: Mask | None) -> Mask | None:
    """The mask that reveals no more than either of two masks of one column (``None``: unmasked).

    Masks of the same kind take the smaller argument (``show_last(2)`` over ``show_last(4)``, ``round(0)``
    over ``round(2)``); ``year_only`` is stricter than ``month_only``; ``null`` and ``redact`` reveal
    nothing of the value and win over any other. Masks revealing different things of a value (the last
    characters and a hash, say) are not comparable: the caller sees null.
    """
    if first is None or second is None:
        return first or second
    if first == second:
        return first
    for blank in ("null", "redact"):
        if blank in (first.kind, second.kind):
            return first if first.kind == blank else second
    if first.kind == second.kind and first.kind in _FEWER_IS_STRICTER:
        assert first.number is not None and second.number is not None
        return first if first.number <= second.number else second
    if {first.kind, second.kind} == set(_DATES):
        return first if first.kind == _DATES[0] else second
    return NOTHING


def covered_grants(
    grants: Iterable[CompiledGrant], agreements: Iterable[Agreement], organisation: object, purpose: str | None
) -> Iterator[CompiledGrant]:
    """Each grant intersected with each agreement covering ``organisation`` and ``purpose`` that shares its
    table (agreements are assumed in force); pairs sharing no column give nothing."""
    if purpose is None:
        return
    covering = [agreement for agreement in agreements if agreement.covers(organisation, purpose)]
    for grant in grants:
        for agreement in covering:
            agreed = agreement.tables.get((grant.department, grant.table.name))
            if agreed is None:
                continue
            columns = grant.columns & agreed.columns
            if not columns:
                continue
            masks = {
                name: mask
                for name in sorted(columns)
                if (mask := stricter(grant.masks.get(name), agreed.masks.get(name))) is not None
            }
            yield CompiledGrant(
                scope=grant.scope,
                department=grant.department,
                table=grant.table,
                columns=columns,
                row_filter=conjunction(grant.row_filter, agreed.condition),
                masks=masks,
                via=grant.via,
                agreement=(agreement.id, agreement.version),
            )
