"""The server's log: one JSON object a line on stderr, rendered by structlog, for the
service's own loggers (`safeguard.*`), uvicorn's and any library's warnings alike (their
standard-library records through structlog's `ProcessorFormatter`).

`safeguard.requests` has one line per request (`request_logger`, fed by
`app.fhir.observing`): its id, the client and organisation asking, the route template, the
method, the status and the duration. Never a path, a query, a body or a header's value: those
may hold NHS numbers and names. Those lines are rendered by structlog alone and written
straight to stderr, in the same shape: through the standard library's records and formatter
a line cost 40-60 us, this way 5 us in a loop and about 20 inside the app (where a read by id
costs 500). They are written when `safeguard.requests` is enabled for INFO
(SAFEGUARD_LOG_LEVEL).
"""

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog

REQUESTS = "safeguard.requests"


def _json(event: Any, **_: Any) -> str:
    """One line of JSON (orjson: a few microseconds)."""
    return orjson.dumps(event, default=str).decode()


def json_formatter() -> structlog.stdlib.ProcessorFormatter:
    """Formats a structlog event or a plain log record as one JSON object: its fields, the
    event (the message), level, logger, a UTC timestamp and any exception's traceback."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(serializer=_json),
        ],
    )


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` (uvicorn's `log_config`): the service's loggers at
    `level`, uvicorn's too (its access log stays off: `safeguard.requests` replaces it), and
    any other library's warnings, all to one stderr handler in JSON."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.logs.json_formatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "safeguard": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


class _StderrLines:
    """Writes each rendered line to the current `sys.stderr`."""

    def info(self, line: str) -> None:
        sys.stderr.write(line + "\n")


def _requests_logger_name(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event_dict["logger"] = REQUESTS
    return event_dict


def request_logger() -> Any:
    """The logger of the per-request lines: structlog, rendering each event as one JSON
    object (its fields, then level, logger and a UTC timestamp) on stderr."""
    return structlog.wrap_logger(
        _StderrLines(),
        processors=[
            structlog.processors.add_log_level,
            _requests_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=_json),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    ).bind()  # bound now: a lazy proxy would build a bound logger on every call
