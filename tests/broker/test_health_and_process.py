"""The broker as an operator sees it: health follows Redis, Redis outages are UNAVAILABLE, and the
`python -m broker` process with its embedded Redis keeps jobs across a SIGTERM and a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker.embedded_redis import find_redis_server
from jobwire import Client, JobwireError

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.02)
    raise AssertionError("redis-server did not start")


def health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        status: int = stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        return status


def wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_health_follows_redis_and_outages_are_unavailable(make_broker: Any, tmp_path: Path) -> None:
    port = free_port()
    redis_proc = start_redis(port, tmp_path)
    try:
        replica = make_broker(redis_url=f"redis://127.0.0.1:{port}/0")
        serving = health_pb2.HealthCheckResponse.SERVING
        assert health(replica.target) == serving
        with Client(replica.target) as client:
            assert client.enqueue("t") == 1
            redis_proc.terminate()
            redis_proc.wait(10)
            with pytest.raises(JobwireError) as raised:
                client.enqueue("t")
            assert raised.value.code == grpc.StatusCode.UNAVAILABLE
            assert "Redis" in raised.value.reason  # a clear message, no internals
            wait_for(lambda: health(replica.target) == health_pb2.HealthCheckResponse.NOT_SERVING)
            redis_proc = start_redis(port, tmp_path)
            wait_for(lambda: health(replica.target) == serving)
            assert client.enqueue("t") == 1  # the restarted Redis kept nothing (no persistence)
    finally:
        redis_proc.terminate()
        redis_proc.wait(10)


def test_broker_process_with_embedded_redis_survives_restart(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "JOBWIRE_LISTEN": f"127.0.0.1:{port}",
        "JOBWIRE_DATA_DIR": str(tmp_path / "data"),
        "JOBWIRE_GRACE_PERIOD": "2",
        "JOBWIRE_HTTP_LISTEN": "",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}",
    }
    env.pop("JOBWIRE_REDIS_URL", None)
    target = f"127.0.0.1:{port}"

    log = tmp_path / "broker.log"

    def run_broker() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "broker"], env=env, stderr=out)
        wait_for(lambda: _serving(target) or proc.poll() is not None, timeout=20)
        assert proc.poll() is None, log.read_text()
        return proc

    def sigterm(proc: subprocess.Popen[bytes]) -> None:
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - start < 10

    first = run_broker()
    try:
        with Client(target) as client:
            job_id = client.enqueue("persisted", [1, {"a": 2}], priority=3)
    finally:
        sigterm(first)
    second = run_broker()
    try:
        with Client(target) as client:
            info = client.job_info(job_id)
            assert info is not None and info.args == [1, {"a": 2}] and info.priority == 3
            assert client.enqueue("next") == job_id + 1
    finally:
        sigterm(second)
    assert not (tmp_path / "data" / "redis.sock").exists()  # the embedded Redis stopped too


def _serving(target: str) -> bool:
    try:
        return bool(health(target) == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def test_draining_broker_answers_long_polls_at_once(make_broker: Any, namespace: str) -> None:
    import threading

    replica = make_broker(grace_period=10)
    with Client(replica.target, namespace=namespace) as client:
        worker = client.register_worker()
        answers: list[object] = []
        poller = threading.Thread(target=lambda: answers.append(client.dequeue(worker, wait=30)))
        poller.start()
        time.sleep(0.3)
        start = time.monotonic()
        replica.stop(grace=10)
        poller.join(15)
        assert answers == [None]
        assert time.monotonic() - start < 5  # not the 30 s wait, nor the 10 s grace period
