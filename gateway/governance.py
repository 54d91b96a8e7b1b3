"""The governance endpoints: the register of agreements, and reloading policy and agreements.

GET  /agreements          the register: JSON, or a readable page for a browser asking for HTML
GET  /agreements/{id}     one agreement of the register (JSON)
POST /admin/reload        reload the policy file and the agreements folder (needs agreements.admin_scope)

The register is public unless ``agreements.register_scope`` names a scope it needs; then, like
``/admin/reload``, it takes a bearer token and refuses as ``/graphql`` does (401, 403, 503).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from gateway.endpoint import SECURITY_HEADERS, auth_refusal, json_response
from gateway.errors import AuthError, InsufficientScopeError
from gateway.policy.agreements import Agreement
from gateway.principal import Principal
from gateway.register import register, register_page
from gateway.reload import PolicyReloader
from gateway.service import Gateway
from gateway.settings import Settings

Authenticate = Callable[[Request], Awaitable[Principal]]

#: The register page may style itself but runs no script and loads nothing from elsewhere.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"


def governance_routes(
    gateway: Gateway, settings: Settings, authenticate: Authenticate, reloader: PolicyReloader
) -> list[Route]:
    """The routes, for an application whose gateway has a policy (none without authentication)."""

    async def _refusal(request: Request, scope: str | None) -> Response | None:
        """``None`` when the request may go on: no scope needed, or a token holding ``scope``."""
        if scope is None:
            return None
        try:
            principal = await authenticate(request)
            if not principal.has_scope(scope):
                raise InsufficientScopeError(f"this needs the scope {scope}", [scope])
        except AuthError as error:
            return auth_refusal(error, settings.auth.realm)
        return None

    def _agreements() -> list[Agreement]:
        policy = gateway.policy
        return list(policy.agreements.all) if policy is not None and policy.agreements is not None else []

    async def agreements(request: Request) -> Response:
        refused = await _refusal(request, settings.agreements.register_scope)
        if refused is not None:
            return refused
        now = gateway.clock()
        if "text/html" in request.headers.get("accept", ""):
            headers = {**SECURITY_HEADERS, "content-security-policy": PAGE_POLICY}
            return HTMLResponse(register_page(_agreements(), now), headers=headers)
        return json_response(register(_agreements(), now), 200)

    async def agreement(request: Request) -> Response:
        refused = await _refusal(request, settings.agreements.register_scope)
        if refused is not None:
            return refused
        wanted = request.path_params["agreement_id"]
        entries = register([a for a in _agreements() if a.id == wanted], gateway.clock())["agreements"]
        if not entries:
            return json_response({"error": f"no agreement '{wanted}' is registered"}, 404)
        return json_response(entries[0], 200)

    async def reload(request: Request) -> Response:
        refused = await _refusal(request, settings.agreements.admin_scope)
        if refused is not None:
            return refused
        outcome = reloader.reload("POST /admin/reload")
        return json_response(outcome.to_dict(), 200 if outcome.reloaded else 422)

    return [
        Route("/agreements", agreements, methods=["GET"]),
        Route("/agreements/{agreement_id}", agreement, methods=["GET"]),
        Route("/admin/reload", reload, methods=["POST"]),
    ]
