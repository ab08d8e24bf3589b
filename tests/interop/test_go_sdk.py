"""The Go example (sdk/go/examples/enqueue) against the real broker; a Python worker runs jobs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any


def test_go_example_enqueues_and_reads_the_result(
    broker: Any, namespace: str, go_enqueue: Path, python_worker: Any
) -> None:
    with python_worker() as worker:
        proc = subprocess.run(
            [str(go_enqueue), "-target", broker.target, "-namespace", namespace,
             "-task", "add", "-args", "[4, 5]", "-timeout", "20s"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["state"] == "finished"
    assert out["result"] == 9
    assert worker.done == [out["id"]]


def test_go_gets_invalid_argument_with_field(broker: Any, namespace: str, go_enqueue: Path) -> None:
    proc = subprocess.run(
        [str(go_enqueue), "-target", broker.target, "-namespace", namespace, "-task", ""],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error: INVALID_ARGUMENT: ")
    assert lines[1].startswith("field task: ")
