"""The Python examples of docs/sdk-python.md run as written against a real broker.

Every ```python block runs in its own interpreter, in a namespace of its own, unless the line
before it is `<!-- not run -->`. When a ```text block follows it, that is the exact output.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "sdk-python.md"
NOT_RUN = "<!-- not run -->"
TARGET = '"127.0.0.1:50051"'
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


@dataclass(frozen=True)
class Example:
    """One runnable block: where it is, its code, and the output it promises (None: any)."""

    line: int
    code: str
    output: str | None


def examples() -> list[Example]:
    text = PAGE.read_text()
    blocks = list(BLOCK.finditer(text))
    found = []
    for i, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        before = text[: block.start()].rstrip().splitlines()
        if before and before[-1].strip() == NOT_RUN:
            continue
        output = None
        if i + 1 < len(blocks) and blocks[i + 1].group(1) == "text":
            between = text[block.end() : blocks[i + 1].start()]
            if not between.strip():
                output = blocks[i + 1].group(2)
        found.append(Example(text.count("\n", 0, block.start()) + 1, block.group(2), output))
    return found


EXAMPLES = examples()


def test_the_page_has_runnable_examples() -> None:
    assert len(EXAMPLES) >= 5
    for example in EXAMPLES:
        assert TARGET in example.code, f"line {example.line}: connects to no broker"


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"line{e.line}" for e in EXAMPLES])
def test_example_runs_as_written(broker: Any, tmp_path: Path, example: Example) -> None:
    namespace = f"docs-{uuid.uuid4().hex[:12]}"
    script = tmp_path / "example.py"
    script.write_text(example.code.replace(TARGET, f"{broker.target!r}, namespace={namespace!r}"))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=50,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    if example.output is not None:
        assert done.stdout == example.output
