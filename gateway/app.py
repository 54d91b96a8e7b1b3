"""The Starlette application: routes, and a lifespan that opens and closes the departments' sources and
starts and stops the issuers' key refreshers.

POST|GET /graphql   GraphQL over HTTP (GraphiQL for browsers)
GET /healthz        the process is up
GET /readyz         every department's source answers and its breaker is not open (per department, with
                    its breaker's state; 503 if any is not ready), from the background health checks'
                    last state: it never waits for a department
/graphiql-assets    GraphiQL's assets, when graphiql.assets_dir is set
GET /agreements     the register of information sharing agreements (gateway/governance.py), and
POST /admin/reload  reloading policy and agreements, with a policy
GET /metrics        Prometheus metrics (telemetry.metrics: on by default; gateway/metrics_export.py)

Every HTTP request gets a request id (gateway/request_ids.py), answered in ``X-Request-Id``; GraphQL
requests are counted, timed and traced (gateway/request_telemetry.py, gateway/tracing.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import heap
from gateway.audit.keys import Signer
from gateway.audit.setup import create_auditor
from gateway.audit_queries import AuditQueries
from gateway.auth.bearer import Authenticator
from gateway.documents import DocumentCache
from gateway.endpoint import SECURITY_HEADERS, GraphQLEndpoint, dumps
from gateway.execution.guarded_adapters import GuardedAdapters, SourceHealth
from gateway.execution.health_checks import HealthChecker
from gateway.governance import governance_routes
from gateway.graphiql import LOCAL_ASSETS_PATH
from gateway.graphiql_assets import missing_assets_advice
from gateway.metrics_export import metrics_route
from gateway.metrics_sampler import MetricsSampler
from gateway.policy.store import Policy
from gateway.principal import ANONYMOUS, Principal
from gateway.reload import PolicyReloader
from gateway.request_ids import HEADER as REQUEST_ID_HEADER
from gateway.request_ids import RequestIds
from gateway.service import Gateway
from gateway.settings import CORSSettings, Settings
from gateway.tracing import Tracing
from schema.catalog import Catalog

log = structlog.get_logger("fedgate.app")


async def no_authentication(request: Request) -> Principal:
    """Authentication switched off: every caller is the anonymous principal (development only)."""
    return ANONYMOUS


def _readiness(check: SourceHealth) -> dict[str, Any]:
    """One department in ``/readyz``: reachable, how fast its last check was, the error code if not, its
    breaker, and how old the state is."""
    entry: dict[str, Any] = {
        "ok": check.ok,
        "latency_ms": None if check.latency_ms is None else round(check.latency_ms, 1),
        "code": check.code,
        "breaker": check.breaker.value,
        "checked_seconds_ago": None if check.checked_seconds_ago is None else round(check.checked_seconds_ago, 1),
    }
    if check.retry_after is not None:
        entry["retryAfter"] = max(1, round(check.retry_after))
    return entry


def create_app(
    settings: Settings,
    catalog: Catalog,
    policy: Policy | None,
    *,
    sources: GuardedAdapters | None = None,
    audit_signer: Signer | None = None,
    tracing: Tracing | None = None,
    settle_heap: bool = False,
) -> GatewayApp:
    """Build the application from a validated configuration (:func:`gateway.configuration.load_configuration`
    loads it, for ``fedgate serve`` and each of its workers); sources and the audit store open at start-up.
    ``tracing`` defaults to what ``telemetry.tracing`` configures (tests pass an in-memory exporter's).
    ``settle_heap``: once started, set the objects start-up made aside from the garbage collector
    (:func:`gateway.heap.settle`; for a server's process, not for a test that builds many applications)."""
    if policy is not None and policy.secrets.ephemeral:
        log.warning("policy_secret_ephemeral", detail="set policy.secret_env: hidden-key order differs per process")
    authenticator = Authenticator(settings.auth) if settings.auth.enabled else None
    if authenticator is None:
        log.warning("authentication_disabled", detail="every caller can read every department: development only")
    auditor = create_auditor(settings, audit_signer)
    tracing = tracing or Tracing.from_settings(settings.telemetry.tracing)
    gateway = Gateway(catalog, settings, sources or GuardedAdapters(catalog), policy, auditor=auditor)
    endpoint = GraphQLEndpoint(gateway, settings, authenticator or no_authentication, tracing=tracing)
    audit_endpoint = None
    if auditor is not None and authenticator is not None:
        documents = DocumentCache(size=256, limits=gateway.documents.limits, name="audit_document")
        queries = AuditQueries(auditor, settings, documents)
        audit_endpoint = GraphQLEndpoint(
            queries, settings, authenticator, name="audit", route="/audit/graphql", tracing=tracing
        )
    reloader = PolicyReloader(gateway, settings, catalog) if policy is not None else None
    health_checks = HealthChecker(gateway.sources)
    metrics = settings.telemetry.metrics
    sampler = MetricsSampler(
        gateway.sources, health_checks, auditor.writer if auditor is not None else None, metrics.sample_interval_seconds
    )

    async def healthz(request: Request) -> Response:
        return Response(dumps({"status": "ok"}), media_type="application/json", headers=SECURITY_HEADERS)

    async def readyz(request: Request) -> Response:
        checks = health_checks.readiness()
        audit_failure = auditor.writer.failure if auditor is not None else None
        ready = all(check.ok for check in checks) and audit_failure is None
        body: dict[str, Any] = {
            "status": "ready" if ready else "degraded",
            "departments": {check.department: _readiness(check) for check in checks},
        }
        if auditor is not None:  # without its store, nothing can be disclosed: every query is refused
            body["audit"] = {"status": "ok" if audit_failure is None else "unavailable", "reason": audit_failure}
        return Response(
            dumps(body), status_code=200 if ready else 503, media_type="application/json", headers=SECURITY_HEADERS
        )

    routes: list[Route | Mount] = [
        Route("/graphql", endpoint.handle, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if audit_endpoint is not None:
        routes.append(Route("/audit/graphql", audit_endpoint.handle, methods=["GET", "POST"]))
    if metrics.enabled:
        routes.append(metrics_route(metrics, sampler))
    assets = settings.graphiql.assets_path
    if assets is not None:
        advice = missing_assets_advice(assets)
        if advice is not None:  # the page will say so too; the API itself works
            log.warning("graphiql_assets_missing", detail=advice)
        routes.append(Mount(LOCAL_ASSETS_PATH, StaticFiles(directory=assets, check_dir=False), name="graphiql-assets"))
    if reloader is not None:
        routes.extend(governance_routes(gateway, settings, authenticator or no_authentication, reloader))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if authenticator is not None:
            authenticator.start()  # the issuers' keys, fetched and refreshed in the background
        try:
            await gateway.start()
            await health_checks.start()
            await sampler.start()
            async with reloader.running() if reloader is not None else contextlib.nullcontext():
                if settle_heap:
                    heap.settle()
                yield
        finally:
            await sampler.stop()
            await health_checks.stop()  # before the sources close: a check would reopen a pool
            await gateway.stop()
            if authenticator is not None:
                await authenticator.close()
            await tracing.shutdown()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    app.state.health_checks = health_checks
    if settings.cors.enabled:
        return CORSGatewayApp(app, endpoint, settings.cors)
    return GatewayApp(app, endpoint)


class GatewayApp:
    """The ASGI application: ``GET``/``POST /graphql`` go straight to the endpoint, the rest to Starlette.

    The endpoint answers every request it is given itself, errors included, so Starlette's router and
    exception middleware have nothing to add on the hot path, and their cost per request is saved
    (measured in ``docs/performance.md``). Other paths, other methods (405) and the lifespan go through
    the Starlette application.
    """

    def __init__(self, app: Starlette, endpoint: GraphQLEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint
        self._asgi: ASGIApp = RequestIds(self.route)

    @property
    def state(self) -> State:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)

    async def route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Every request, once its request id is set."""
        if scope["type"] == "http" and scope["path"] == "/graphql" and scope["method"] in ("GET", "POST"):
            response = await self.endpoint.handle(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class CORSGatewayApp(GatewayApp):
    """The application behind Starlette's CORS middleware: only when ``cors.allow_origins`` lists origins,
    so a deployment without CORS pays nothing for it on the hot path."""

    def __init__(self, app: Starlette, endpoint: GraphQLEndpoint, cors: CORSSettings) -> None:
        super().__init__(app, endpoint)
        cors_middleware = CORSMiddleware(
            self.route,
            allow_origins=cors.allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=cors.allow_headers,
            expose_headers=[REQUEST_ID_HEADER],
            max_age=cors.max_age_seconds,
        )
        self._asgi = RequestIds(cors_middleware)
