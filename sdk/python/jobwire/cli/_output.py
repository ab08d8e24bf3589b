"""How the `jobwire` command prints: aligned tables and `key: value` blocks, or one JSON document.

Timestamps are ISO-8601 UTC (`2026-05-18T10:00:00Z`); `show` views add a relative age.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO


class CliError(Exception):
    """An expected failure: printed as `jobwire: <message>` and exit code 1, no traceback."""


class Output:
    """Where a command writes: a JSON document (`--json`) or text for people, on stdout."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode
        # Looked up now, not at import time, so redirections (pytest's capsys) are honoured.
        self.stdout: TextIO = sys.stdout
        self.stderr: TextIO = sys.stderr

    def emit(self, data: Any, human: Callable[[], None]) -> None:
        """Print `data` as one JSON document in `--json` mode, else call `human()`."""
        if self.json_mode:
            self.line(json.dumps(jsonable(data), indent=2, ensure_ascii=False))
        else:
            human()

    def line(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def note(self, text: str) -> None:
        """Progress and hints for people: stderr, so stdout stays parseable."""
        print(text, file=self.stderr, flush=True)

    def table(self, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Left-aligned columns two spaces apart, headed by `header`."""
        cells = [list(header), *([cell(value) for value in row] for row in rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        for row in cells:
            padded = (text.ljust(width) for text, width in zip(row, widths, strict=True))
            self.line("  ".join(padded).rstrip())

    def fields(self, values: Mapping[str, Any], now: datetime | None = None) -> None:
        """One aligned `key: value` line per field; timestamps with their age."""
        now = now or datetime.now(UTC)
        width = max((len(key) for key in values), default=0) + 1
        for key, value in values.items():
            if isinstance(value, datetime):
                text = f"{iso(value)} ({age(value, now)})"
            else:
                text = cell(value)
            self.line(f"{key + ':':<{width}} {text}")


def iso(value: datetime | None) -> str:
    """`2026-05-18T10:00:00Z` (whole seconds), or `-` for an unset timestamp."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def age(value: datetime, now: datetime) -> str:
    """`5m ago` or `in 2h`: how far `value` is from `now`, in its largest unit."""
    seconds = (now - value).total_seconds()
    text = span(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def span(seconds: float) -> str:
    """A duration in its largest whole unit: `42s`, `5m`, `3h`, `2d`."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def cell(value: Any) -> str:
    """Text of one value: strings as they are, timestamps in ISO-8601, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return iso(value)
    return json.dumps(jsonable(value), ensure_ascii=False)


def jsonable(value: Any) -> Any:
    """Plain JSON values from SDK results: dataclasses as objects, timestamps as ISO-8601 UTC."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    return value


def listing(name: str, items: Sequence[Any], total: int) -> dict[str, Any]:
    """The JSON document of one page: `{name: [...], "total": N}`."""
    return {name: list(items), "total": total}


def more_hint(out: Output, what: str, offset: int, shown: int, total: int) -> None:
    """Tell people (on stderr) that the page is not everything."""
    if offset + shown < total:
        first = offset + 1 if shown else offset
        out.note(f"{what} {first}-{offset + shown} of {total} (see -o/--offset and -l/--limit)")
