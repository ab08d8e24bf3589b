"""Logs: JOBWIRE_LOG_FORMAT=json gives one JSON object per line (gRPC core's own output kept
out), and the SDK worker logs each failed job at WARNING and each job at DEBUG."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker.logs import JsonFormatter
from jobwire import Client, Worker

ROOT = Path(__file__).resolve().parents[2]


def test_json_formatter_fields_extras_and_exception() -> None:
    logger = logging.getLogger("jobwire.test")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord(
            "jobwire.test", logging.ERROR, __file__, 1, "job %d failed", (7,), sys.exc_info(),
            extra={"task": "t", "job_id": 7},
        )  # fmt: skip
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["level"] == "ERROR" and data["logger"] == "jobwire.test"
    assert data["message"] == "job 7 failed"
    assert data["task"] == "t" and data["job_id"] == 7
    assert data["time"].endswith("+00:00")
    assert "ValueError: boom" in data["exception"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serving(target: str) -> bool:
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
            return bool(status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def test_broker_process_json_lines(redis_server: str, tmp_path: Path) -> None:
    target = f"127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBWIRE_", "GRPC_"))}
    env.update(
        PYTHONPATH=f"{ROOT}:{ROOT / 'sdk' / 'python'}",
        JOBWIRE_REDIS_URL=redis_server,
        JOBWIRE_LISTEN=target,
        JOBWIRE_HTTP_LISTEN="127.0.0.1:0",
        JOBWIRE_LOG_FORMAT="json",
        JOBWIRE_LOG_LEVEL="DEBUG",
        JOBWIRE_REPAIR_INTERVAL="0",
        JOBWIRE_SCHEDULE_INTERVAL="0",
        JOBWIRE_GRACE_PERIOD="0",
    )
    log = tmp_path / "broker.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "broker"], env=env, stderr=err)
    try:
        deadline = time.monotonic() + 20
        while not _serving(target):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with Client(target) as client:
            client.enqueue("logged")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    messages = [r["message"] for r in records]
    assert any(m.startswith("jobwire broker listening on") for m in messages), messages
    assert any(m.startswith("HTTP port listening on") for m in messages), messages
    assert any(m.startswith("shutting down") for m in messages), messages


@pytest.fixture
def worker_thread(broker: Any, namespace: str) -> Any:
    client = Client(broker.target, namespace=namespace, timeout=5)
    worker = Worker(client, concurrency=1)
    thread = threading.Thread(target=lambda: asyncio.run(worker.run_async()), daemon=True)
    yield worker, thread, client
    worker.stop()
    thread.join(15)
    client.close()


def test_worker_logs_failed_jobs_at_warning_and_jobs_at_debug(
    worker_thread: Any, caplog: pytest.LogCaptureFixture
) -> None:
    worker: Worker = worker_thread[0]
    thread, client = worker_thread[1:]

    @worker.task("ok")
    def ok(job: Any) -> int:
        return 1

    @worker.task("bad")
    def bad(job: Any) -> None:
        raise ValueError("no luck")

    caplog.set_level(logging.DEBUG, logger="jobwire.worker")
    thread.start()
    assert worker.ready.wait(10)
    good = client.enqueue("ok")
    failing = client.enqueue("bad", attempts=2)
    client.result(good, interval=0.02, timeout=10)
    deadline = time.monotonic() + 10
    while not [r for r in caplog.records if r.levelno == logging.WARNING]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.name == "jobwire.worker"
    assert warning.getMessage() == f"job {failing} (bad, attempt 1) failed: ValueError: no luck"
    assert (warning.task, warning.job_id, warning.attempt) == ("bad", failing, 1)  # type: ignore[attr-defined]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG and "finished" in r.message]
    assert [r.job_id for r in debug] == [good]  # type: ignore[attr-defined]
