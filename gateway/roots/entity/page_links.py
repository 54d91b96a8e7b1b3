"""One statement for a page of an entity list and the link rows of the people on it.

``people(limit:, offset:)`` without a condition needs the page of keys (``SELECT key FROM links GROUP BY
key ORDER BY key LIMIT .. OFFSET ..``) and then the link rows of those keys (the spine). Both read the
link table, so they are sent as one statement: the spine's key condition becomes a join to the page,

    SELECT <spine columns> FROM links JOIN (<page>) AS _fedgate_keys ON links.key = _fedgate_keys.key ...

saving a round trip on the path every list request takes. The fuse pass makes it after the protect pass,
so both halves keep their own policy subqueries; the page's placeholders are renamed so the two sets
cannot collide. A join (rather than ``IN (<page>)``) is what MariaDB accepts with a ``LIMIT`` inside, and
its binary-text equality keeps one copy of the page.
"""

from __future__ import annotations

import dataclasses

from sqlglot import exp

from adapters.base import SourceQuery
from adapters.canonical import key_set_parameter, placeholder
from gateway.plan.nodes import ScanNode

KEYS_ALIAS = "_fedgate_keys"


def page_with_links(page: ScanNode, spine: ScanNode) -> ScanNode:
    """``spine`` (batched on the key, ``IN :keys``) reading the keys of ``page`` itself: no keys parameter."""
    assert spine.keys_parameter is not None
    renamed = {name: f"k{index}" for index, name in enumerate(page.parameters)}

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder) and node.name in renamed:
            return placeholder(renamed[node.name])
        return node

    page_select = page.query.select.transform(rename)
    assert isinstance(page_select, exp.Select)
    select = spine.query.select.copy()
    key_set = next(node for node in select.find_all(exp.In) if key_set_parameter(node) == spine.keys_parameter)
    where = select.args["where"].this
    rest = [part for part in (where.flatten() if isinstance(where, exp.And) else [where]) if part is not key_set]
    select.set("where", exp.Where(this=exp.and_(*rest)) if rest else None)
    keys = exp.alias_(page_select.subquery(), KEYS_ALIAS, quoted=True, table=True)
    key = exp.column(page.query.columns[0].name, table=KEYS_ALIAS, quoted=True)
    select = select.join(keys, on=exp.EQ(this=key_set.this.copy(), expression=key), join_type="inner")
    specs = {name: spec for name, spec in spine.query.parameters.items() if name != spine.keys_parameter}
    specs.update({renamed[name]: spec for name, spec in page.query.parameters.items()})
    parameters = {name: value for name, value in spine.parameters.items() if name != spine.keys_parameter}
    parameters.update({renamed[name]: value for name, value in page.parameters.items()})
    query = SourceQuery(spine.query.department, select, spine.query.columns, specs)
    return dataclasses.replace(
        spine, query=query, parameters=parameters, keys_parameter=None, page=page.page, grants=()
    )
