"""``fedgate agreements check``: what is valid but needs an information governance team's attention.

Invalid agreements never load (every problem named with file, line, key path and reason). These findings
are about agreements and scopes that load but deserve a look, all warnings:

* an agreement still marked active that has expired, or expires within :data:`EXPIRING_DAYS`; one past its
  review date;
* a scope granting a table that no agreement in force covers for any purpose the scope permits (its
  nobody can read it);
* an agreement in force that covers nothing any scope permitted its purposes grants (it shares nothing).
"""

from __future__ import annotations

import datetime as dt

from gateway.policy.agreements import Agreement
from gateway.policy.lint import Finding
from gateway.policy.store import Policy

#: An agreement expiring within this many days is reported.
EXPIRING_DAYS = 30


def lint_agreements(policy: Policy, now: dt.datetime, *, explain_scope: str) -> list[Finding]:
    """Every finding about ``policy``'s agreements and scopes at ``now`` (none without agreements)."""
    if policy.agreements is None:
        return []
    findings = [finding for agreement in policy.agreements.all for finding in _dates(agreement, now)]
    in_force = policy.agreements.in_force(now).agreements
    scopes = [scope for scope in policy.document.scopes if scope.grants and scope.name != explain_scope]
    for scope in scopes:
        for grant in scope.grants:
            department, table = grant.table.split(".")
            covering = [
                agreement
                for agreement in in_force
                if (department, table) in agreement.tables and set(agreement.document.purposes) & set(scope.purposes)
            ]
            if not covering:
                purposes = ", ".join(scope.purposes) or "none"
                reason = f"no agreement in force covers it for the scope's purposes ({purposes}): nobody can read it"
                findings.append(Finding("warning", scope.name, reason, grant.table))
    for agreement in in_force:
        granted = {
            grant.table
            for scope in scopes
            if set(scope.purposes) & set(agreement.document.purposes)
            for grant in scope.grants
        }
        if not granted & set(agreement.document.data_items):
            reason = "covers nothing any scope permitted its purposes grants: it shares nothing"
            findings.append(Finding("warning", "", reason, agreement.id))
    return findings


def _dates(agreement: Agreement, now: dt.datetime) -> list[Finding]:
    document = agreement.document
    if document.status != "active":
        return []
    findings = []
    if document.expires <= now:
        reason = f"expired on {document.expires:%Y-%m-%d %H:%M:%S %Z}: renew it, or mark it ended"
        findings.append(Finding("warning", "", reason, agreement.id))
    elif document.expires <= now + dt.timedelta(days=EXPIRING_DAYS):
        reason = f"expires on {document.expires:%Y-%m-%d %H:%M:%S %Z}, within {EXPIRING_DAYS} days"
        findings.append(Finding("warning", "", reason, agreement.id))
    if document.review_by < now.date() and document.expires > now:
        findings.append(Finding("warning", "", f"past its review date ({document.review_by})", agreement.id))
    return findings
