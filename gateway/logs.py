"""Structured logging (structlog) to standard error, as JSON lines or for a console.

fedgate's own events go straight through structlog. Everything logged with the standard library (uvicorn,
asyncpg, httpx warnings...) reaches one handler on the root logger whose
:class:`structlog.stdlib.ProcessorFormatter` renders it the same way, so ``logging.format: json`` gives JSON
lines only, and each record is written once (uvicorn's own handlers are removed; its loggers propagate).
"""

from __future__ import annotations

import logging
import sys

import structlog

from gateway.settings import LoggingSettings

#: Loggers of libraries that install handlers of their own; theirs are removed so records print once.
_FOREIGN = ("uvicorn", "uvicorn.error", "uvicorn.access", "granian")


def configure_logging(settings: LoggingSettings) -> None:
    """Route fedgate's and every library's logs through structlog at the configured level and format."""
    level = getattr(logging, settings.level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _FOREIGN:
        foreign = logging.getLogger(name)
        foreign.handlers.clear()
        foreign.propagate = True
        foreign.setLevel(logging.NOTSET)
    # httpx logs every request URL at INFO; fedgate logs what matters about its own calls itself.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
