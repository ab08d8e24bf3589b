"""The Python SDK against a guarded broker: Client, AsyncClient, Worker (thread and process
tasks) and the CLI, with a token over TLS, over mTLS and over plaintext."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import grpc
import pytest

from jobwire import AsyncClient, Client, JobwireError, Worker
from jobwire.cli import main
from tests.security.helpers import Pki, proc_note_and_sum, token_file

PRODUCER = "producer-secret-0123456789"
WORKER = "worker-secret-0123456789"


@pytest.fixture(params=["tls", "mtls", "plaintext"])
def guarded(request: Any, make_broker: Any, pki: Pki, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    """A broker with tokens (and TLS or mTLS), and the client options that reach it."""
    tokens = token_file(
        tmp_path / "tokens.toml",
        [
            {"secret": PRODUCER, "roles": ["produce", "read"], "namespaces": ["t*"]},
            {"secret": WORKER, "roles": ["work", "produce", "read"], "namespaces": ["t*"]},
        ],
    )
    settings: dict[str, Any] = {"auth_file": tokens}
    options: dict[str, Any] = {}
    if request.param != "plaintext":
        settings |= {"tls_cert": pki.dir / "server.crt", "tls_key": pki.dir / "server.key"}
        options["tls_ca"] = pki.ca
    if request.param == "mtls":
        settings["tls_client_ca"] = pki.ca
        options |= {"tls_cert": pki.dir / "client.crt", "tls_key": pki.dir / "client.key"}
    return make_broker(**settings), options


def run_worker(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=lambda: asyncio.run(worker.run_async()), daemon=True)
    thread.start()
    assert worker.ready.wait(15)
    return thread


@pytest.mark.parametrize("mode", ["stream", "poll"])
def test_worker_runs_thread_and_process_tasks(
    guarded: tuple[Any, dict[str, Any]], namespace: str, mode: Any
) -> None:
    broker, options = guarded
    producer = Client(broker.target, namespace=namespace, token=PRODUCER, **options)
    worker_client = Client(broker.target, namespace=namespace, token=WORKER, timeout=10, **options)
    worker = Worker(worker_client, executor="process", mode=mode, concurrency=2, spare=0)
    worker.add_task("sum", proc_note_and_sum)
    thread = run_worker(worker)
    try:
        job_id = producer.enqueue("sum", [2, 3])
        info = producer.result(job_id, interval=0.05, timeout=30)
        assert info is not None and info.state == "finished", info
        assert info.result["sum"] == 5
        assert info.result["pid"] != os.getpid()
        assert info.notes["from_process"] == info.result["pid"]  # the job process' own call
        assert info.notes["minion_pid"] == info.result["pid"]  # the worker's NoteJob
    finally:
        worker.stop()
        thread.join(15)
        producer.close()
        worker_client.close()
    assert not thread.is_alive()


async def test_async_client_and_thread_tasks(
    guarded: tuple[Any, dict[str, Any]], namespace: str
) -> None:
    broker, options = guarded
    async with AsyncClient(broker.target, namespace=namespace, token=WORKER, **options) as aclient:
        worker = Worker(aclient, concurrency=1, spare=0)

        @worker.task("note")
        def note(job: Any) -> str:
            job.note(thread=True)  # the worker's blocking client, made like `aclient`
            return "done"

        job_id = await aclient.enqueue("note")
        run = asyncio.create_task(worker.run_async())
        try:
            for _ in range(300):
                info = await aclient.job_info(job_id)
                if info is not None and info.state == "finished":
                    break
                await asyncio.sleep(0.05)
            assert info is not None and info.state == "finished", info
            assert (info.result, info.notes["thread"]) == ("done", True)
        finally:
            worker.stop()
            await asyncio.wait_for(run, 15)
        with pytest.raises(JobwireError) as raised:
            await aclient.reset(all=True)  # the worker token is not admin
        assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_client_without_or_with_a_wrong_token(
    guarded: tuple[Any, dict[str, Any]], namespace: str
) -> None:
    broker, options = guarded
    for token in (None, "wrong-token-0123456789"):
        with Client(broker.target, namespace=namespace, token=token, **options) as client:
            with pytest.raises(JobwireError) as raised:
                client.stats()
            assert raised.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert "token" in raised.value.reason


def test_environment_supplies_token_and_tls(
    guarded: tuple[Any, dict[str, Any]], namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker, options = guarded
    monkeypatch.setenv("JOBWIRE_TARGET", broker.target)
    monkeypatch.setenv("JOBWIRE_NAMESPACE", namespace)
    monkeypatch.setenv("JOBWIRE_TOKEN", PRODUCER)
    for name, variable in (
        ("tls_ca", "JOBWIRE_TLS_CA"),
        ("tls_cert", "JOBWIRE_TLS_CLIENT_CERT"),
        ("tls_key", "JOBWIRE_TLS_CLIENT_KEY"),
    ):
        if name in options:
            monkeypatch.setenv(variable, str(options[name]))
    with Client.from_env() as client:
        assert client.enqueue("from-env") >= 1
        assert "secret" not in repr(client.channel_settings)  # the token is never shown
        assert PRODUCER not in repr(client.channel_settings)


def test_cli_token_and_tls_flags(
    guarded: tuple[Any, dict[str, Any]], namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broker, options = guarded
    flags = ["--target", broker.target, "--namespace", namespace]
    for name, value in options.items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    assert main([*flags, "job", "enqueue", "via-cli"]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    assert main([*flags, "--token", PRODUCER, "job", "enqueue", "via-cli"]) == 0
    assert main([*flags, "--token", PRODUCER, "job", "stats", "--json"]) == 0
    assert '"inactive_jobs": 1' in capsys.readouterr().out
    assert main([*flags, "health"]) == 0  # open without a token
    assert capsys.readouterr().out.strip() == "SERVING"
    assert main([*flags, "--token", PRODUCER, "job", "broadcast", "jobs", "-a", "[1]"]) == 1
    assert "PERMISSION_DENIED" in capsys.readouterr().err
