"""TLS and mTLS with test-made certificates; SIGHUP re-reads certificates and the token file of a
running `python -m broker`; a broker beyond loopback without tokens or mTLS refuses to start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from broker.config import Settings
from broker.server import Broker
from jobwire import Client, JobwireError
from tests.security.helpers import (
    ROOT,
    SECRETS,
    BrokerProcess,
    Pki,
    free_port,
    make_pki,
    role_tokens,
    tls_channel,
    token_file,
    wait_for,
)


def serving(channel: grpc.Channel) -> bool:
    stub = health_pb2_grpc.HealthStub(channel)
    answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def handshake_fails(channel: grpc.Channel) -> bool:
    try:
        serving(channel)
    except grpc.RpcError as error:
        return bool(error.code() == grpc.StatusCode.UNAVAILABLE)
    return False


def test_tls(make_broker: Any, pki: Pki, namespace: str) -> None:
    cert, key = pki.dir / "server.crt", pki.dir / "server.key"
    broker = make_broker(tls_cert=cert, tls_key=key)
    with tls_channel(broker.target, pki) as channel:
        assert serving(channel)
    with grpc.insecure_channel(broker.target) as plain:
        assert handshake_fails(plain)
    other = make_pki(pki.dir / "other", "another CA")  # a client trusting another CA
    with tls_channel(broker.target, other) as channel:
        assert handshake_fails(channel)
    with Client(broker.target, namespace=namespace, tls_ca=pki.ca) as client:
        job_id = client.enqueue("over-tls")
        info = client.job_info(job_id)
        assert info is not None and info.task == "over-tls"


def test_mtls_requires_a_client_certificate_of_the_ca(
    make_broker: Any, pki: Pki, namespace: str
) -> None:
    broker = make_broker(
        tls_cert=pki.dir / "server.crt", tls_key=pki.dir / "server.key", tls_client_ca=pki.ca
    )
    client_pair = (pki.dir / "client.crt", pki.dir / "client.key")
    with tls_channel(broker.target, pki, client_pair) as channel:
        assert serving(channel)
    with tls_channel(broker.target, pki) as channel:  # no client certificate
        assert handshake_fails(channel)
    stranger = make_pki(pki.dir / "stranger", "a stranger's CA")
    stranger_pair = stranger.issue("client", server=False)
    with tls_channel(broker.target, pki, stranger_pair) as channel:
        assert handshake_fails(channel)
    with Client(
        broker.target,
        namespace=namespace,
        tls_ca=pki.ca,
        tls_cert=client_pair[0],
        tls_key=client_pair[1],
    ) as client:
        assert client.enqueue("over-mtls") >= 1


async def test_mismatched_key_refuses_to_start(pki: Pki) -> None:
    other = make_pki(pki.dir / "other")
    other.issue("server", server=True)
    settings = Settings(
        listen="127.0.0.1:0",
        redis_url="redis://127.0.0.1:1/0",
        tls_cert=pki.dir / "server.crt",
        tls_key=other.dir / "server.key",
    )
    with pytest.raises(ValueError, match="TLS files"):
        await Broker(settings).start()


# --- SIGHUP on `python -m broker` -------------------------------------------------------------


def test_sighup_reloads_tokens_and_keeps_them_when_the_file_is_bad(
    broker_process: Any, tmp_path: Path, namespace: str
) -> None:
    tokens = role_tokens(tmp_path / "tokens.toml")
    port = free_port()
    process: BrokerProcess = broker_process(
        {"JOBWIRE_LISTEN": f"127.0.0.1:{port}", "JOBWIRE_AUTH_FILE": str(tokens)}
    )
    process.start()
    process.wait_listening()
    target = f"127.0.0.1:{port}"
    fresh = "rotated-admin-secret-0123456789"

    def code(secret: str) -> grpc.StatusCode | None:
        with Client(target, namespace=namespace, token=secret) as client:
            try:
                client.stats()
            except JobwireError as error:
                return error.code
            return None

    assert code(SECRETS["admin"]) is None
    assert code(fresh) == grpc.StatusCode.UNAUTHENTICATED

    token_file(tokens, [{"secret": fresh, "roles": ["admin"], "namespaces": ["*"]}])
    process.hup()
    wait_for(lambda: code(fresh) is None)
    assert code(SECRETS["admin"]) == grpc.StatusCode.UNAUTHENTICATED

    tokens.write_text("[[token]]\nroles = 'broken'\n")
    process.hup()
    wait_for(lambda: b"token file not reloaded" in process.log.read_bytes())
    assert code(fresh) is None  # the last good file still applies


def test_sighup_reloads_certificates(broker_process: Any, tmp_path: Path) -> None:
    first = make_pki(tmp_path / "first", "first CA")
    cert, key = first.issue("server", server=True)
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    live_cert.write_bytes(cert.read_bytes())
    live_key.write_bytes(key.read_bytes())
    port = free_port()
    process: BrokerProcess = broker_process(
        {
            "JOBWIRE_LISTEN": f"127.0.0.1:{port}",
            "JOBWIRE_TLS_CERT": str(live_cert),
            "JOBWIRE_TLS_KEY": str(live_key),
        }
    )
    process.start()
    process.wait_listening()
    target = f"127.0.0.1:{port}"
    with tls_channel(target, first) as channel:
        assert serving(channel)

    second = make_pki(tmp_path / "second", "second CA")
    cert, key = second.issue("server", server=True)
    live_key.write_text("not a key")  # half-written renewal: reload keeps the old pair
    process.hup()
    wait_for(lambda: b"certificates not reloaded" in process.log.read_bytes())
    with tls_channel(target, first) as channel:
        assert serving(channel)

    live_cert.write_bytes(cert.read_bytes())
    live_key.write_bytes(key.read_bytes())
    process.hup()
    wait_for(lambda: b"certificates reloaded" in process.log.read_bytes())
    with tls_channel(target, second) as channel:  # new connections get the new certificate
        assert serving(channel)
    with tls_channel(target, first) as channel:
        assert handshake_fails(channel)


# --- secure by default ------------------------------------------------------------------------


def test_wildcard_listen_without_auth_exits_with_one_line(redis_server: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}",
        "JOBWIRE_LISTEN": f"0.0.0.0:{free_port()}",
        "JOBWIRE_REDIS_URL": redis_server,
    }
    done = subprocess.run(
        [sys.executable, "-m", "broker"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0], done.stderr


@pytest.mark.parametrize(
    "extra",
    [
        {"JOBWIRE_ALLOW_INSECURE": "1"},
        {"JOBWIRE_AUTH_FILE": "tokens"},
        {"JOBWIRE_TLS_CLIENT_CA": "mtls"},
    ],
)
def test_wildcard_listen_starts_with_tokens_mtls_or_allow_insecure(
    broker_process: Any, tmp_path: Path, pki: Pki, extra: dict[str, str]
) -> None:
    if "JOBWIRE_AUTH_FILE" in extra:
        extra = {"JOBWIRE_AUTH_FILE": str(role_tokens(tmp_path / "tokens.toml"))}
    if "JOBWIRE_TLS_CLIENT_CA" in extra:
        extra = {
            "JOBWIRE_TLS_CERT": str(pki.dir / "server.crt"),
            "JOBWIRE_TLS_KEY": str(pki.dir / "server.key"),
            "JOBWIRE_TLS_CLIENT_CA": str(pki.ca),
        }
    process: BrokerProcess = broker_process({"JOBWIRE_LISTEN": f"0.0.0.0:{free_port()}", **extra})
    process.start()
    process.wait_listening()


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"JOBWIRE_TLS_CERT": "/tls/tls.crt"}, "JOBWIRE_TLS_KEY"),
        ({"JOBWIRE_TLS_KEY": "/tls/tls.key"}, "JOBWIRE_TLS_CERT"),
        ({"JOBWIRE_TLS_CLIENT_CA": "/tls/ca.crt"}, "JOBWIRE_TLS_CLIENT_CA"),
        ({"JOBWIRE_ALLOW_INSECURE": "maybe"}, "JOBWIRE_ALLOW_INSECURE"),
    ],
)
def test_inconsistent_security_settings_name_the_variable(
    environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        Settings.from_env(environ)
