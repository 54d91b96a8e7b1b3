"""Structured logging (structlog) to standard error, as JSON lines or for a console."""

from __future__ import annotations

import logging
import sys

import structlog

from gateway.settings import LoggingSettings


def configure_logging(settings: LoggingSettings) -> None:
    """Route fedgate's and uvicorn's logs through structlog at the configured level and format."""
    level = getattr(logging, settings.level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s", force=True)
    # httpx logs every request URL at INFO; fedgate logs what matters about its own calls itself.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
