"""Toolchains for the interop tests: the built Node SDK and the Go example, made once a session.

Nothing here skips: a missing node, npm install or Go toolchain fails the test with what to
install (.ci/run installs all of it).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE_SDK = ROOT / "sdk" / "node"
GO_SDK = ROOT / "sdk" / "go"
NODE_SCRIPT = Path(__file__).parent / "node" / "jobwire.mjs"


def _run(args: list[str], cwd: Path, what: str, timeout: float) -> None:
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """Path of `node`, with sdk/node built into dist/ (rebuilt when a source is newer)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js 20+ (Debian: apt-get install nodejs npm)")
    if not (NODE_SDK / "node_modules" / ".bin" / "tsc").exists():
        pytest.fail("sdk/node has no node_modules: run `make node-setup` (npm ci in sdk/node)")
    built = NODE_SDK / "dist" / "index.js"
    sources = [*NODE_SDK.glob("src/**/*.ts"), NODE_SDK / "tsconfig.json"]
    if not built.exists() or max(p.stat().st_mtime for p in sources) > built.stat().st_mtime:
        _run(["npm", "run", "-s", "build"], NODE_SDK, "building sdk/node (npm run build)", 120)
    return Path(node)


@pytest.fixture(scope="session")
def go_enqueue() -> Path:
    """The Go example binary sdk/go/bin/enqueue, built offline by sdk/go/build.sh."""
    if shutil.which("go") is None:
        pytest.fail(
            "go is not on PATH: apt-get install golang-go golang-google-grpc-dev "
            "golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev (see .ci/run)"
        )
    _run([str(GO_SDK / "build.sh")], GO_SDK, "building sdk/go (sdk/go/build.sh)", 50)
    return GO_SDK / "bin" / "enqueue"


@pytest.fixture
def run_node(node_sdk: Path) -> Callable[..., Any]:
    """Runs one subcommand of tests/interop/node/jobwire.mjs and returns its JSON output."""

    def run(*args: str, timeout: float = 30) -> Any:
        proc = subprocess.run(
            [str(node_sdk), str(NODE_SCRIPT), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"node exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture
def start_node(node_sdk: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts a subcommand of jobwire.mjs in the background; killed after the test if still up."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [str(node_sdk), str(NODE_SCRIPT), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


class PythonWorker:
    """The Python Worker runtime (jobwire.Worker over the stream) in a thread, running `add`."""

    def __init__(self, client: Any) -> None:
        from jobwire import Worker

        self.done: list[int] = []
        self.worker = Worker(client, concurrency=4)
        self.worker.add_task("add", self._add)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.worker.run_async(handle_signals=False)), daemon=True
        )

    def _add(self, job: Any, a: int, b: int) -> int:
        self.done.append(job.id)
        return a + b

    def __enter__(self) -> PythonWorker:
        self._thread.start()
        assert self.worker.ready.wait(10), "the Python worker did not connect"
        self.worker_id = self.worker.id
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self._thread.join(10)


@pytest.fixture
def python_worker(client: Any) -> Callable[[], PythonWorker]:
    return lambda: PythonWorker(client)
