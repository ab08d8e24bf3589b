"""The HTTP port: /healthz and /readyz (Redis reachable and not draining), and how a broker
process reacts when its HTTP address is taken (the default one: warn and run without; one set
explicitly: refuse to start)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker.config import DEFAULT_HTTP_LISTEN
from broker.embedded_redis import find_redis_server

ROOT = Path(__file__).resolve().parents[2]
# Startup advice about the test Redis (AOF off), logged by every broker that uses it.
REDIS_ADVICE = "WARNING jobwire.redis:"


def get(port: int, path: str) -> tuple[int, str]:
    """Status and body of GET http://127.0.0.1:port/path."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def grpc_serving(target: str) -> bool:
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
            return bool(status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test alone (the test may stop it); its URL and process."""
    port = free_port()
    proc = subprocess.Popen(
        [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(answers, 10)
    yield f"redis://127.0.0.1:{port}/0", proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def test_healthz_and_readyz_follow_redis_and_draining(make_broker: Any, private_redis: Any) -> None:
    url, redis_proc = private_redis
    replica = make_broker(redis_url=url, http_listen="127.0.0.1:0")
    port = replica.broker.http_port
    assert port
    assert get(port, "/healthz") == (200, "ok\n")
    assert get(port, "/readyz") == (200, "ready\n")
    assert get(port, "/nothing")[0] == 404

    redis_proc.terminate()
    redis_proc.wait(10)
    assert get(port, "/readyz") == (503, "not ready\n")
    assert get(port, "/healthz") == (200, "ok\n")  # the process itself is fine
    # The same truth as grpc.health.v1.
    assert not grpc_serving(replica.target)


def test_readyz_is_503_while_draining(make_broker: Any) -> None:
    replica = make_broker(http_listen="127.0.0.1:0")
    port = replica.broker.http_port
    assert get(port, "/readyz")[0] == 200
    replica.call(replica.broker.health.drain())
    assert get(port, "/readyz") == (503, "not ready\n")
    assert not grpc_serving(replica.target)


def test_no_http_port_when_disabled(make_broker: Any) -> None:
    replica = make_broker(http_listen="")
    assert replica.broker.http_port is None and replica.broker.metrics is None


def _broker_env(redis_url: str, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBWIRE_", "OTEL_"))}
    env.update(
        PYTHONPATH=f"{ROOT}:{ROOT / 'sdk' / 'python'}",
        JOBWIRE_REDIS_URL=redis_url,
        JOBWIRE_LISTEN=f"127.0.0.1:{free_port()}",
        JOBWIRE_REPAIR_INTERVAL="0",
        JOBWIRE_SCHEDULE_INTERVAL="0",
        JOBWIRE_GRACE_PERIOD="0",
        **variables,
    )
    return env


@pytest.fixture
def taken_default_address() -> Iterator[None]:
    """Holds the default HTTP address (unless something else already does)."""
    host, port = DEFAULT_HTTP_LISTEN.rsplit(":", 1)
    sock = socket.socket()
    try:
        sock.bind((host, int(port)))
        sock.listen()
    except OSError:
        pass  # taken already: just as good
    try:
        yield
    finally:
        sock.close()


def test_default_address_taken_warns_once_and_runs_without(
    redis_server: str, tmp_path: Path, taken_default_address: None
) -> None:
    env = _broker_env(redis_server)
    log = tmp_path / "broker.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "broker"], env=env, stderr=err)
    try:
        wait_for(lambda: grpc_serving(env["JOBWIRE_LISTEN"]) or proc.poll() is not None)
        assert proc.poll() is None, log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    lines = log.read_text().splitlines()
    warnings = [line for line in lines if " WARNING " in line and REDIS_ADVICE not in line]
    assert len(warnings) == 1, log.read_text()
    assert f"HTTP port {DEFAULT_HTTP_LISTEN} unavailable" in warnings[0]


def test_explicit_address_taken_refuses_to_start(redis_server: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        env = _broker_env(redis_server, JOBWIRE_HTTP_LISTEN=address)
        proc = subprocess.run(
            [sys.executable, "-m", "broker"], env=env, capture_output=True, text=True, timeout=30
        )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if REDIS_ADVICE not in line]
    assert len(lines) == 1, proc.stderr
    assert f"cannot listen on JOBWIRE_HTTP_LISTEN {address}" in lines[0]
    assert "ERROR" in lines[0]


def test_http_listen_setting() -> None:
    from broker.config import Settings

    assert Settings.from_env({}).http_listen is None  # the default address, if free
    assert Settings.from_env({"JOBWIRE_HTTP_LISTEN": ""}).http_listen == ""  # off
    assert Settings.from_env({"JOBWIRE_HTTP_LISTEN": "[::1]:0"}).http_listen == "[::1]:0"
    with pytest.raises(ValueError, match="JOBWIRE_HTTP_LISTEN"):
        Settings.from_env({"JOBWIRE_HTTP_LISTEN": "localhost"})
