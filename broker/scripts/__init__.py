"""Lua scripts, one file per store operation; fragments in lib/ are pulled in by `-- include:`."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_INCLUDE = re.compile(r"^-- include: (.+)$", re.MULTILINE)


@cache
def source(name: str) -> str:
    """Full text of script `name`: its included fragments (in order) followed by its body."""
    root = resources.files(__package__)
    body = (root / f"{name}.lua").read_text()
    match = _INCLUDE.search(body)
    parts = (
        [(root / "lib" / f"{lib}.lua").read_text() for lib in match.group(1).split()]
        if match
        else []
    )
    return "\n".join([*parts, body])
