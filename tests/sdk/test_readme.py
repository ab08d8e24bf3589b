"""The README's Python quick example runs as written (against the test broker)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quick_example_prints_the_result(broker: Any, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quick example") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "README has no Python quick example"
    script = tmp_path / "example.py"
    script.write_text(code.group(1).replace('"127.0.0.1:50051"', repr(broker.target)))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "5"
