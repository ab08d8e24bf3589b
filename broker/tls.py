"""TLS and mTLS server credentials whose certificates can be re-read while serving.

grpc asks the fetcher for a new certificate configuration before every TLS handshake; `reload`
reads and checks the files and leaves the new configuration for the next handshake, so renewed
certificates (cert-manager, Vault) apply to new connections without a restart.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

log = logging.getLogger("jobwire.broker")


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM files of the server's identity and, for mTLS, the CAs that sign clients."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def load(self) -> Any:
        """A grpc certificate configuration of the files; ValueError when they do not fit."""
        try:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, self.key)  # the key must match the certificate
            if self.client_ca is not None:
                context.load_verify_locations(self.client_ca)
            chain, key = self.cert.read_bytes(), self.key.read_bytes()
            roots = None if self.client_ca is None else self.client_ca.read_bytes()
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"TLS files {self.cert}, {self.key}: {error}") from None
        return grpc.ssl_server_certificate_configuration([(key, chain)], roots)


class ServerTls:
    """Dynamic server credentials; `reload` swaps certificates for the next handshakes."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._initial = files.load()
        self._pending: Any = None
        self._lock = threading.Lock()  # the fetcher runs on grpc's threads

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._initial,
            self._fetch,
            require_client_authentication=self.files.client_ca is not None,
        )

    def _fetch(self) -> Any:
        with self._lock:
            pending, self._pending = self._pending, None
        return pending

    def reload(self) -> bool:
        """Re-read the files; if they are unreadable or do not match, keep the current ones."""
        try:
            configuration = self.files.load()
        except ValueError as error:
            log.error("certificates not reloaded, keeping the current ones: %s", error)
            return False
        with self._lock:
            self._pending = configuration
        log.info("certificates reloaded from %s", self.files.cert)
        return True
