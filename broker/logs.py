"""Process logging: human text by default, or one JSON object per line (JOBWIRE_LOG_FORMAT=json).

A JSON line has `time` (UTC, ISO 8601), `level`, `logger` and `message`, then every field a call
passed with `extra=`, and `exception` with the traceback when there is one. gRPC core logs on its
own (C++, straight to stderr, not through `logging`): `quiet_grpc_core` keeps it to errors (none
at all with JSON lines, so every line stays parseable) unless GRPC_VERBOSITY says otherwise.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in data:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def quiet_grpc_core(log_format: str) -> None:
    """Keeps gRPC core's own stderr output out of our logs; call before grpc is first used."""
    # GRPC_VERBOSITY is gRPC's documented switch; an operator's own value wins.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE" if log_format == "json" else "ERROR")


def configure(level: str, log_format: str) -> None:
    """Sends the root logger to stderr at `level`, as text or JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
