"""The public register of information sharing agreements: ``GET /agreements``.

Modelled on the Digital Economy Act register and the ICO's advice to keep a central log of current
sharing agreements: for each agreement, the parties, the purposes, the lawful basis, the data items (table
and column names, never data), the masks and row conditions, the retention instruction, the dates, the
signatories and whether it is in force now. JSON for machines; a readable page for people (a browser
asking for HTML). Public by default (``agreements.register_scope`` can require a scope).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from gateway.policy.agreements import Agreement

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def state(agreement: Agreement, now: dt.datetime) -> str:
    """Where the agreement stands at ``now``: in force, not yet in force, expired, or its status."""
    document = agreement.document
    if document.status != "active":
        return document.status
    if now < document.starts:
        return "not yet in force"
    if now >= document.expires:
        return "expired"
    return "in force"


def entry(agreement: Agreement, now: dt.datetime) -> dict[str, Any]:
    """One agreement as the register shows it."""
    document = agreement.document
    return {
        "id": document.id,
        "title": document.title,
        "version": document.version,
        "status": document.status,
        "state": state(agreement, now),
        "summary": document.summary,
        "providers": list(document.providers),
        "recipients": list(document.recipients),
        "purposes": list(document.purposes),
        "lawful_basis": document.lawful_basis.model_dump(),
        "data_items": {
            table: {
                "columns": list(items.columns),
                "masks": dict(items.masks),
                "row_condition": items.row_condition,
            }
            for table, items in document.data_items.items()
        },
        "retention": document.retention,
        "starts": document.starts.isoformat(),
        "review_by": document.review_by.isoformat(),
        "expires": document.expires.isoformat(),
        "signatories": [signatory.model_dump(mode="json") for signatory in document.signatories],
        "file": agreement.file,
        "digest": agreement.digest,
    }


def register(agreements: Iterable[Agreement], now: dt.datetime) -> dict[str, Any]:
    """The whole register: when it was read, and every agreement, in force or not, by id."""
    entries = [entry(agreement, now) for agreement in agreements]
    return {"generated_at": now.isoformat(), "agreements": entries}


def register_page(agreements: Iterable[Agreement], now: dt.datetime) -> str:
    """The register as a page people can read."""
    return _TEMPLATES.get_template("register.html").render(register=register(agreements, now))
