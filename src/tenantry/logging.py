"""structlog configuration: dotted event names, context bound per tenant and run, secrets never logged."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(token|secret|password|authorization|api[-_]?key|cookie)", re.IGNORECASE)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def _scrub(key: str, value: Any) -> Any:
    if _SECRET_KEYS.search(key) and value is not None:
        return "<redacted>"
    if isinstance(value, str):
        return _BEARER.sub(r"\1 <redacted>", value)
    if isinstance(value, Mapping):
        return {k: _scrub(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub("", v) for v in value]
    return value


def _redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: drop values of secret-looking keys and credentials embedded in strings,
    also inside nested values and in the formatted traceback of a logged exception."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _scrub(key, value)
    return event_dict


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _escape_controls(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """In text logs, control characters a request carried (ESC, NUL) are written escaped, so a log line
    cannot move the terminal's cursor or hide what follows; JSON logs escape them by themselves."""
    for key, value in list(event_dict.items()):
        if isinstance(value, str) and key != "exception":
            event_dict[key] = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return event_dict


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing (it may be replaced after configuration)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """structlog for our events, and the standard library's records (uvicorn, alembic) rendered the same way,
    so a JSON log is JSON on every line and every line passes the same redaction."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    # Tracebacks are formatted to text before redaction, so the console renderer prints that text as is.
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    stream: Any = _CurrentStderr()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _redact,
                *([] if json else [_escape_controls]),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for noisy in ("httpx", "httpcore", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "alembic"):
        # Servers configure these loggers their own way; hand them back to the root handler above.
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.disabled = False
        if name != "alembic":
            logger.setLevel(logging.NOTSET)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _redact, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
