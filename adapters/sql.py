"""What every SQL source shares: statement preparation, parameter binding, timeouts, error mapping, decoding.

Subclasses provide the driver: :meth:`SqlAdapter._run` executes text with bound parameters on a pooled
connection and :meth:`SqlAdapter._map_error` turns a driver exception into a
:class:`~adapters.errors.SourceError` (or ``None`` when the exception is not the driver's).

Each driver's errors map to one vocabulary: unreachable (``SOURCE_UNAVAILABLE``), the session ended by the
source (``SOURCE_TERMINATED``: an administrator, a shutdown), out of connections, memory or disk
(``SOURCE_RESOURCE_EXHAUSTED``), out of time (``SOURCE_TIMEOUT``), cancelled by someone else
(``SOURCE_CANCELLED``) and the statement refused (``SOURCE_QUERY_FAILED``). fedgate's own timeout cancels a
statement client-side first; a cancel the driver reports after the statement's whole timeout is the
server-side backstop of that timeout, and so a timeout too.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import structlog

from adapters.base import NO_CONTEXT, FetchContext, PreparedQuery, Row, SourceAdapter, SourceQuery
from adapters.errors import (
    SourceCancelledError,
    SourceError,
    SourceQueryError,
    SourceResourceExhaustedError,
    SourceTerminatedError,
    SourceTimeoutError,
    SourceUnavailableError,
)
from adapters.sql_render import MySQLDialect, Rendered, SqlDialect, padded_size
from adapters.values import RowDecoder
from schema.catalog import Table

log = structlog.get_logger("fedgate.adapters")


class SqlStatement(PreparedQuery):
    """A :class:`SourceQuery` rendered for one SQL dialect, plus its column decoders."""

    def __init__(self, query: SourceQuery, dialect: SqlDialect) -> None:
        self.query = query
        self.dialect = dialect
        self.rendered: Rendered = dialect.render(query)
        self.decode_rows = RowDecoder([column.type for column in query.columns])
        self._list_parameters = tuple(name for name, spec in query.parameters.items() if spec.is_list)
        self._by_sizes: dict[tuple[int, ...], Rendered] = {}

    @property
    def display_sql(self) -> str:
        return self.rendered.text

    @property
    def placeholders(self) -> tuple[tuple[str, str], ...]:
        names = self.rendered.names
        return tuple((self.dialect.placeholder(name, position), name) for position, name in enumerate(names, start=1))

    def bind(self, values: Mapping[str, Any], *, positional: bool) -> tuple[str, Sequence[Any] | dict[str, Any]]:
        """Text and driver parameters for ``values`` (canonical values keyed by placeholder name)."""
        specs = self.query.parameters
        rendered = self.rendered
        encoded: dict[str, Any] = {}
        if isinstance(self.dialect, MySQLDialect) and self._list_parameters:
            rendered = self._expanded(values, encoded)
        for name in rendered.names:
            if name not in encoded:
                encoded[name] = self.dialect.encode(values[name], specs[name])
        if positional:
            return rendered.text, [encoded[name] for name in rendered.names]
        return rendered.text, encoded

    def _expanded(self, values: Mapping[str, Any], encoded: dict[str, Any]) -> Rendered:
        """The MySQL text for these key-set sizes; fills ``encoded`` with the expanded, padded keys."""
        assert isinstance(self.dialect, MySQLDialect)
        sizes = {name: padded_size(len(values[name])) for name in self._list_parameters}
        key = tuple(sizes[name] for name in self._list_parameters)
        rendered = self._by_sizes.get(key)
        if rendered is None:
            rendered = self._by_sizes[key] = self.dialect.render_with_sizes(self.query, sizes)
        for name in self._list_parameters:
            keys = self.dialect.encode(values[name], self.query.parameters[name])
            padded = list(keys) + [keys[-1]] * (sizes[name] - len(keys)) if keys else []
            encoded.update({f"{name}_{index}": item for index, item in enumerate(padded)})
        return rendered


class SqlAdapter(SourceAdapter):
    """Base of the SQLite, PostgreSQL and MariaDB adapters."""

    dialect: SqlDialect
    #: Whether the driver binds parameters by position (``$1``) rather than by name.
    positional_parameters: ClassVar[bool] = False

    def prepare(self, query: SourceQuery) -> SqlStatement:
        return SqlStatement(query, self.dialect)

    async def fetch(
        self, prepared: PreparedQuery, values: Mapping[str, Any], *, timeout: float, context: FetchContext = NO_CONTEXT
    ) -> list[Row]:
        assert isinstance(prepared, SqlStatement)
        text, params = prepared.bind(values, positional=self.positional_parameters)
        raw = await self.execute_text(text, params, timeout=timeout)
        try:
            return prepared.decode_rows(raw)
        except (ValueError, TypeError, ArithmeticError) as exc:
            # The database's value does not fit the catalog's type (schema drift, or an sql() mask's result).
            log.warning("source_value_mismatch", department=self.name, error=type(exc).__name__)
            raise self.query_failed() from exc

    async def health(self) -> None:
        await self.execute_text("SELECT 1", [] if self.positional_parameters else {}, timeout=self.health_timeout)

    @property
    def health_timeout(self) -> float:
        return float(getattr(self.department.source, "timeout_seconds", 5.0))

    async def table_rows(self) -> Mapping[str, int]:
        counts: dict[str, int] = {}
        for table in self.department.tables:
            try:
                rows = await self.execute_text(*self.row_count(table), timeout=self.health_timeout)
            except SourceError:
                continue  # statistics are a hint: a table we cannot count is planned with the default
            if rows and rows[0][0] is not None and int(rows[0][0]) >= 0:
                counts[table.name] = int(rows[0][0])
        return counts

    @abc.abstractmethod
    def row_count(self, table: Table) -> tuple[str, Sequence[Any]]:
        """A cheap statement returning ``table``'s approximate row count (one row, one column), and its parameters."""

    async def execute_text(
        self, text: str, params: Sequence[Any] | dict[str, Any], *, timeout: float
    ) -> Sequence[Sequence[Any]]:
        """Run SQL text fedgate generated (or a fixed catalog query) with a timeout and mapped errors."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                return await self._run(text, params, timeout)
        except TimeoutError as exc:
            raise self.timed_out(timeout) from exc
        except SourceError:
            raise
        except Exception as exc:
            overran = time.monotonic() - started >= timeout
            raise self._translate(exc, timeout if overran else None) from exc

    def _translate(self, exc: BaseException, overran: float | None = None) -> SourceError:
        """The mapped error for a driver exception (re-raised as it is when not the driver's), logged.

        ``overran``: the timeout, when the statement ran all of it. A cancel then is the server-side backstop of
        fedgate's own timeout (the client-side one fires first unless the event loop was late): a timeout.
        """
        mapped = self._map_error(exc)
        if mapped is None:
            raise exc
        if overran is not None and isinstance(mapped, SourceCancelledError):
            mapped = self.timed_out(overran)
        log.warning(
            "source_error",
            department=self.name,
            kind=self.kind,
            error=type(exc).__name__,
            code=getattr(exc, "sqlstate", None) or (exc.args[0] if exc.args and isinstance(exc.args[0], int) else None),
            mapped=mapped.code,
        )
        # The driver's own message can quote values: only at debug level, never to callers.
        log.debug("source_error_detail", department=self.name, detail=str(exc)[:500])
        return mapped

    def unavailable(self) -> SourceUnavailableError:
        return SourceUnavailableError(self.name, f"department '{self.name}' is unavailable")

    def query_failed(self) -> SourceQueryError:
        return SourceQueryError(self.name, f"department '{self.name}' could not run the query")

    def timed_out(self, timeout: float) -> SourceTimeoutError:
        return SourceTimeoutError(self.name, f"department '{self.name}' did not answer within {timeout:g} s")

    def cancelled(self) -> SourceCancelledError:
        return SourceCancelledError(
            self.name, f"department '{self.name}' cancelled the statement (an operator stopped it)"
        )

    def terminated(self) -> SourceTerminatedError:
        return SourceTerminatedError(
            self.name, f"department '{self.name}' ended the session (an administrator, or the server shutting down)"
        )

    def exhausted(self) -> SourceResourceExhaustedError:
        return SourceResourceExhaustedError(
            self.name, f"department '{self.name}' is out of resources (connections, memory or disk)"
        )

    @abc.abstractmethod
    async def _run(self, text: str, params: Sequence[Any] | dict[str, Any], timeout: float) -> Sequence[Sequence[Any]]:
        """Execute ``text`` on a pooled connection and return the raw rows."""

    @abc.abstractmethod
    def _map_error(self, exc: BaseException) -> SourceError | None:
        """The :class:`SourceError` for a driver exception, or ``None`` if it is not a driver error."""
