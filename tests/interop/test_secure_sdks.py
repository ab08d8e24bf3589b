"""The Node client and the Go example against a guarded broker: bearer tokens over mTLS (and,
for Go, over plaintext as behind a mesh sidecar), with a Python worker running the jobs."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from jobwire import Client, Worker
from tests.security.helpers import Pki, make_pki, token_file

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sdk-interop-secret-0123456789"
READER = "sdk-interop-reader-0123456789"

NODE_SCRIPT = """
import { readFileSync } from "node:fs";
import { Client } from "%(dist)s";
const [target, namespace, token, reader, ca, cert, key] = process.argv.slice(2);
const tls = { ca: readFileSync(ca), cert: readFileSync(cert), key: readFileSync(key) };
const client = new Client({ target, namespace, token, tls });
const id = await client.enqueue("add", [1, 2]);
const info = await client.jobInfo(id);
const denied = new Client({ target, namespace, token: reader, tls });
let code = null;
try { await denied.enqueue("add", [1, 2]); } catch (error) { code = error.code; }
const anonymous = new Client({ target, namespace, tls });
let anonymousCode = null;
try { await anonymous.stats(); } catch (error) { anonymousCode = error.code; }
for (const c of [client, denied, anonymous]) c.close();
console.log(JSON.stringify({ id, task: info.task, code, anonymousCode }));
"""


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    made = make_pki(tmp_path / "pki")
    made.issue("server", server=True)
    made.issue("client", server=False)
    return made


@pytest.fixture
def guarded(make_broker: Any, pki: Pki, tmp_path: Path) -> Any:
    tokens = token_file(
        tmp_path / "tokens.toml",
        [
            {"secret": TOKEN, "roles": ["produce", "read", "work"], "namespaces": ["t*"]},
            {"secret": READER, "roles": ["read"], "namespaces": ["*"]},
        ],
    )
    return make_broker(
        auth_file=tokens,
        tls_cert=pki.dir / "server.crt",
        tls_key=pki.dir / "server.key",
        tls_client_ca=pki.ca,
    )


@pytest.fixture
def plain_guarded(make_broker: Any, tmp_path: Path) -> Any:
    tokens = token_file(
        tmp_path / "tokens.toml",
        [{"secret": TOKEN, "roles": ["produce", "read", "work"], "namespaces": ["t*"]}],
    )
    return make_broker(auth_file=tokens)


@contextmanager
def worker_for(target: str, namespace: str, **options: Any) -> Iterator[None]:
    worker = Worker(Client(target, namespace=namespace, token=TOKEN, **options), concurrency=2)
    worker.add_task("add", lambda job, a, b: a + b)
    thread = threading.Thread(
        target=lambda: asyncio.run(worker.run_async(handle_signals=False)), daemon=True
    )
    thread.start()
    assert worker.ready.wait(10)
    try:
        yield
    finally:
        worker.stop()
        thread.join(10)


def test_node_client_with_token_over_mtls(
    guarded: Any, pki: Pki, namespace: str, node_sdk: Path, tmp_path: Path
) -> None:
    script = tmp_path / "secure.mjs"
    dist = (ROOT / "sdk" / "node" / "dist" / "index.js").as_uri()
    script.write_text(NODE_SCRIPT % {"dist": dist})
    proc = subprocess.run(
        [str(node_sdk), str(script), guarded.target, namespace, TOKEN, READER, str(pki.ca),
         str(pki.dir / "client.crt"), str(pki.dir / "client.key")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["task"] == "add" and out["id"] >= 1
    assert out["code"] == "PERMISSION_DENIED"
    assert out["anonymousCode"] == "UNAUTHENTICATED"


ENV_SCRIPT = """
import { Client } from "%(dist)s";
const [target, namespace] = process.argv.slice(2);
const client = new Client({ target, namespace });  // token and CA from the environment
const id = await client.enqueue("add", [1, 2]);
client.close();
console.log(JSON.stringify({ id }));
"""


def test_node_client_takes_token_and_ca_from_the_environment(
    make_broker: Any, pki: Pki, namespace: str, node_sdk: Path, tmp_path: Path
) -> None:
    tokens = token_file(
        tmp_path / "tokens.toml",
        [{"secret": TOKEN, "roles": ["produce"], "namespaces": ["*"]}],
    )
    broker = make_broker(
        auth_file=tokens, tls_cert=pki.dir / "server.crt", tls_key=pki.dir / "server.key"
    )
    script = tmp_path / "env.mjs"
    script.write_text(ENV_SCRIPT % {"dist": (ROOT / "sdk" / "node" / "dist" / "index.js").as_uri()})
    env = {"PATH": "/usr/bin:/bin", "JOBWIRE_TOKEN": TOKEN, "JOBWIRE_TLS_CA": str(pki.ca)}
    proc = subprocess.run(
        [str(node_sdk), str(script), broker.target, namespace],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["id"] >= 1


def test_go_example_with_token_over_mtls(
    guarded: Any, pki: Pki, namespace: str, go_enqueue: Path
) -> None:
    options = {
        "tls_ca": pki.ca,
        "tls_cert": pki.dir / "client.crt",
        "tls_key": pki.dir / "client.key",
    }
    flags = ["-tls-ca", str(pki.ca), "-tls-cert", str(pki.dir / "client.crt"),
             "-tls-key", str(pki.dir / "client.key")]  # fmt: skip
    run = [str(go_enqueue), "-target", guarded.target, "-namespace", namespace, "-task", "add",
           "-args", "[4, 5]", "-timeout", "20s", *flags]  # fmt: skip
    with worker_for(guarded.target, namespace, **options):
        proc = subprocess.run([*run, "-token", TOKEN], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["result"] == 9
        proc = subprocess.run(run, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1
        assert proc.stderr.startswith("error: UNAUTHENTICATED"), proc.stderr


def test_go_example_with_token_over_plaintext(
    plain_guarded: Any, namespace: str, go_enqueue: Path
) -> None:
    run = [str(go_enqueue), "-target", plain_guarded.target, "-namespace", namespace,
           "-task", "add", "-args", "[1, 1]", "-timeout", "20s", "-token", TOKEN]  # fmt: skip
    with worker_for(plain_guarded.target, namespace):
        proc = subprocess.run(run, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["result"] == 2
