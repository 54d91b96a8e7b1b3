"""What REST and remote-GraphQL sources share: preparing a statement, and a fetch from request to rows.

An HTTP department cannot run SQL. For each statement fedgate

1. finds the table it reads and the table's endpoint mapping (``tables[].rest`` / ``tables[].graphql``);
2. negotiates which conditions the API applies (:mod:`adapters.negotiation`);
3. at fetch time sends the request(s), follows pagination within ``max_pages``, parses at most
   ``max_rows`` rows into canonical values (:mod:`adapters.http_values`), dropping every other field;
4. evaluates the *whole* statement on those rows (:mod:`adapters.residual`): the caller's filters,
   the policy's row filters and masks, order and pages, exactly as on an SQLite department.

The fetch runs within its ``timeout`` (token requests included); the subclass supplies the protocol.
"""

from __future__ import annotations

import abc
import asyncio
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

import structlog
from sqlglot import exp

from adapters.base import (
    NO_CONTEXT,
    Capabilities,
    Capability,
    FetchContext,
    PreparedQuery,
    Row,
    SourceAdapter,
    SourceQuery,
)
from adapters.errors import (
    SourceAuthError,
    SourceQueryError,
    SourceResponseTooLargeError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from adapters.http_credentials import SourceCredential, TokenExchangeSourceCredential, create_source_credential
from adapters.http_transport import HttpTransport, JsonResponse, QueryParams, tls_verify
from adapters.http_values import RowParser
from adapters.negotiation import Negotiated, Offer, Pushed, RequestPlan, negotiate, plan_requests
from adapters.pushdown import pushable_conditions
from adapters.residual import ResidualQuery
from schema.catalog import Department, Table
from schema.http_sources import HttpSource

log = structlog.get_logger("fedgate.adapters.http")

Endpoint = TypeVar("Endpoint")


class HttpQuery(PreparedQuery, Generic[Endpoint]):
    """A statement prepared for an HTTP department: the request it sends and the SQL fedgate runs after."""

    def __init__(
        self,
        table: Table,
        endpoint: Endpoint,
        negotiated: Sequence[Negotiated],
        residual: ResidualQuery,
        parser: RowParser,
        request_text: str,
    ) -> None:
        self.table = table
        self.endpoint = endpoint
        self.negotiated = tuple(negotiated)
        self.residual = residual
        self.parser = parser
        self.request_text = request_text

    @property
    def display_sql(self) -> str:
        return f"{self.request_text}\nthen in fedgate: {self.residual.display_sql}"

    @property
    def placeholders(self) -> tuple[tuple[str, str], ...]:
        return self.residual.statement.placeholders


class FetchBudget:
    """The limits of one fetch, over all its requests and pages: rows, pages and time."""

    def __init__(self, department: str, source: HttpSource, timeout: float) -> None:
        self.department = department
        self.max_rows = source.max_rows
        self.max_pages = source.max_pages
        self.rows = 0
        self.pages = 0
        self.deadline = time.monotonic() + timeout

    def remaining(self) -> float:
        return max(self.deadline - time.monotonic(), 0.001)

    def page(self) -> None:
        """Count one more request; refuse the fetch beyond ``max_pages``."""
        self.pages += 1
        if self.pages > self.max_pages:
            log.warning("http_source_capped", department=self.department, cap="max_pages")
            raise SourceResponseTooLargeError(
                self.department,
                f"department '{self.department}' needs more than {self.max_pages} pages for this query; refused",
            )

    def add_rows(self, count: int) -> None:
        """Count fetched rows; refuse the fetch beyond ``max_rows``."""
        self.rows += count
        if self.rows > self.max_rows:
            log.warning("http_source_capped", department=self.department, cap="max_rows")
            raise SourceResponseTooLargeError(
                self.department,
                f"department '{self.department}' returned more than {self.max_rows} rows for this query; refused",
            )


class HttpAdapter(SourceAdapter, Generic[Endpoint]):
    """Base of the REST and GraphQL adapters."""

    def __init__(self, department: Department) -> None:
        super().__init__(department)
        assert isinstance(department.source, HttpSource)
        self.source: HttpSource = department.source
        self._tls_error: Exception | None = None
        try:
            verify = tls_verify(self.source)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._tls_error, verify = exc, True
        self.transport = HttpTransport(self.name, self.source, verify)
        self.source_credential: SourceCredential = create_source_credential(self.name, self.source.credential, verify)
        self._capabilities = Capabilities(dialect="sqlite", features=frozenset({Capability.WINDOW_FUNCTIONS}))

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def _check_tls(self) -> None:
        if self._tls_error is not None:
            log.warning("http_source_ca_file", department=self.name, error=type(self._tls_error).__name__)
            raise SourceUnavailableError(self.name, f"department '{self.name}': its ca_file cannot be read")

    async def open(self) -> None:
        self._check_tls()
        await self.transport.open()

    async def close(self) -> None:
        await self.transport.close()
        await self.source_credential.close()

    # --- preparing ---------------------------------------------------------------------------------

    def prepare(self, query: SourceQuery) -> HttpQuery[Endpoint]:
        table = self._table(query)
        endpoint = self.endpoint(table)
        negotiated = negotiate(pushable_conditions(query, table.name), self.offers(endpoint))
        residual = ResidualQuery(query, table)
        parser = RowParser(table.name, residual.columns, self.fields(endpoint))
        return HttpQuery(table, endpoint, negotiated, residual, parser, self.describe(endpoint, negotiated))

    def _table(self, query: SourceQuery) -> Table:
        names = {node.name for node in query.select.find_all(exp.Table)}
        if len(names) != 1 or next(iter(names)) not in self.department.tables_by_name:
            raise SourceQueryError(
                self.name, f"department '{self.name}' can only answer statements on one of its tables"
            )
        return self.department.table(names.pop())

    @abc.abstractmethod
    def endpoint(self, table: Table) -> Endpoint:
        """The table's mapping onto the API (checked present when the catalog was loaded)."""

    @abc.abstractmethod
    def offers(self, endpoint: Endpoint) -> list[Offer]:
        """The filters the endpoint declares."""

    @abc.abstractmethod
    def fields(self, endpoint: Endpoint) -> Mapping[str, str]:
        """Column → JSON path of its value in a row, where they differ."""

    @abc.abstractmethod
    def describe(self, endpoint: Endpoint, negotiated: Sequence[Negotiated]) -> str:
        """The request as ``explain`` shows it, placeholders instead of values."""

    def accepts(self, offer: Offer, values: Sequence[Any]) -> bool:
        """Whether ``offer`` can carry these values (by default, any)."""
        return True

    # --- fetching ----------------------------------------------------------------------------------

    async def fetch(
        self, prepared: PreparedQuery, values: Mapping[str, Any], *, timeout: float, context: FetchContext = NO_CONTEXT
    ) -> list[Row]:
        assert isinstance(prepared, HttpQuery)
        self._check_tls()
        budget = FetchBudget(self.name, self.source, timeout)
        try:
            async with asyncio.timeout(timeout):
                plan = plan_requests(prepared.negotiated, values, self.accepts)
                rows = [] if plan.empty else await self._fetch_plan(prepared, plan, context, budget)
                return await prepared.residual.run(rows, values)
        except TimeoutError as exc:
            raise SourceTimeoutError(
                self.name, f"department '{self.name}' did not answer within {timeout:g} s"
            ) from exc
        except (sqlite3.Error, ValueError, TypeError, ArithmeticError) as exc:
            # The residual statement failed, or a value does not fit its type (an ``sql()`` mask's result).
            log.warning("residual_failed", department=self.name, error=type(exc).__name__)
            raise SourceQueryError(self.name, f"department '{self.name}' could not run the query") from exc

    async def _fetch_plan(
        self, prepared: HttpQuery[Endpoint], plan: RequestPlan, context: FetchContext, budget: FetchBudget
    ) -> list[Row]:
        if len(plan.requests) == 1:
            return await self.fetch_rows(prepared, plan.requests[0], context, budget)
        tasks = [asyncio.ensure_future(self.fetch_rows(prepared, pushed, context, budget)) for pushed in plan.requests]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return [row for rows in results for row in rows]

    @abc.abstractmethod
    async def fetch_rows(
        self, prepared: HttpQuery[Endpoint], pushed: Sequence[Pushed], context: FetchContext, budget: FetchBudget
    ) -> list[Row]:
        """Every row of one request (all its pages), parsed, counted against ``budget``."""

    async def call(
        self,
        method: str,
        url: str,
        *,
        context: FetchContext,
        budget: FetchBudget,
        endpoint: str,
        params: QueryParams | None = None,
        json: Any = None,
    ) -> JsonResponse:
        """One request (a page) with the source's credential, counted against ``budget``."""
        budget.page()
        authorization = await self.source_credential.authorization(context, timeout=budget.remaining())
        try:
            return await self.transport.request(
                method,
                url,
                timeout=budget.remaining(),
                endpoint=endpoint,
                params=params,
                json=json,
                authorization=authorization,
            )
        except SourceAuthError:
            self.source_credential.invalidate(context)
            raise

    async def check(
        self, method: str, url: str, *, endpoint: str, params: QueryParams | None = None, json: Any = None
    ) -> JsonResponse | None:
        """A health request; its response, or ``None`` when only reachability could be checked.

        A token-exchange source has no caller token here: it is asked without a credential, and refusing
        one (401/403) still shows the API is up."""
        timeout = self.source.timeout_seconds
        self._check_tls()
        exchanging = isinstance(self.source_credential, TokenExchangeSourceCredential)
        try:
            async with asyncio.timeout(timeout):
                authorization = (
                    None if exchanging else await self.source_credential.authorization(NO_CONTEXT, timeout=timeout)
                )
                response = await self.transport.request(
                    method,
                    url,
                    timeout=timeout,
                    endpoint=endpoint,
                    params=params,
                    json=json,
                    authorization=authorization,
                )
        except SourceAuthError:
            if not exchanging:
                raise
            return None
        except TimeoutError as exc:
            raise SourceTimeoutError(
                self.name, f"department '{self.name}' did not answer within {timeout:g} s"
            ) from exc
        return None if exchanging else response
