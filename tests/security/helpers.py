"""Helpers of the security tests: a private CA issuing server and client certificates
(`cryptography`), TOML token files with one token per role, and `python -m broker` children."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]

# One secret per role; each token may touch the namespaces "t*" (every test namespace).
SECRETS = {role: f"{role}-secret-{'x' * 20}" for role in ("read", "produce", "work", "admin")}


def token_file(path: Path, entries: list[dict[str, Any]]) -> Path:
    """Write a token file: each entry's `secret` is stored as its SHA-256 unless `plain`."""
    lines = []
    for entry in entries:
        lines.append("[[token]]")
        if entry.get("plain"):
            lines.append(f'secret = "{entry["secret"]}"')
        else:
            lines.append(f'sha256 = "{hashlib.sha256(entry["secret"].encode()).hexdigest()}"')
        lines.append(f"roles = {list(entry['roles'])!r}".replace("'", '"'))
        lines.append(f"namespaces = {list(entry['namespaces'])!r}".replace("'", '"'))
    path.write_text("\n".join(lines) + "\n")
    return path


def role_tokens(path: Path, namespaces: tuple[str, ...] = ("t*",)) -> Path:
    """A token file with one token per role in `SECRETS`."""
    return token_file(
        path,
        [
            {"secret": secret, "roles": [role], "namespaces": namespaces}
            for role, secret in SECRETS.items()
        ],
    )


def bearer(secret: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {secret}"),)


@dataclass
class Pki:
    """PEM files of a test CA and the certificates it signed."""

    dir: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def issue(self, name: str, *, server: bool, cn: str = "localhost") -> tuple[Path, Path]:
        """Write `<name>.crt` and `<name>.key`: a server (localhost, 127.0.0.1) or client cert."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_path, key_path = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


def make_pki(directory: Path, name: str = "jobwire test CA") -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    pki = Pki(directory, key, cert)
    pki.ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pki


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


class BrokerProcess:
    """`python -m broker` as a child process with the given JOBWIRE_* variables."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")},
            "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}",
            "JOBWIRE_REPAIR_INTERVAL": "0",
            "JOBWIRE_SCHEDULE_INTERVAL": "0",
            "JOBWIRE_GRACE_PERIOD": "1",
            "JOBWIRE_HTTP_LISTEN": "",
            **env,
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "broker"], env=self.env, stdout=out, stderr=out
            )
        return self.proc

    def wait_listening(self) -> None:
        """Until the broker logged that it listens (signal handlers are set right after)."""
        proc = self.proc
        assert proc is not None
        wait_for(lambda: b"listening" in self.log.read_bytes() or proc.poll() is not None)
        assert proc.poll() is None, self.log.read_text()
        time.sleep(0.2)  # the SIGHUP handler is installed just after the log line

    def hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def tls_channel(target: str, pki: Pki, client: tuple[Path, Path] | None = None) -> grpc.Channel:
    """A blocking channel trusting the test CA, optionally presenting a client certificate."""
    cert, key = (None, None) if client is None else (client[0].read_bytes(), client[1].read_bytes())
    credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes(), key, cert)
    return grpc.secure_channel(target, credentials)


def proc_note_and_sum(job: Any, a: int, b: int) -> dict[str, int]:
    """A process-executor task: its job handle notes the job over the worker's token and TLS."""
    assert job.note(from_process=os.getpid())
    return {"sum": a + b, "pid": os.getpid()}
