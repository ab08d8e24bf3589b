"""How clients reach a broker: target, bearer token and TLS, and the channels built from them.

One frozen, picklable value holds the settings, so every client the SDK builds for itself (the
worker's, job handles', job processes') connects exactly like the one the user configured.
Unset options come from the environment: JOBWIRE_TOKEN, JOBWIRE_TLS_CA, JOBWIRE_TLS_CLIENT_CERT,
JOBWIRE_TLS_CLIENT_KEY and JOBWIRE_TLS_SERVER_NAME.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from jobwire._requests import CHANNEL_OPTIONS

ENV = {
    "token": "JOBWIRE_TOKEN",
    "tls_ca": "JOBWIRE_TLS_CA",
    "tls_cert": "JOBWIRE_TLS_CLIENT_CERT",
    "tls_key": "JOBWIRE_TLS_CLIENT_KEY",
    "tls_server_name": "JOBWIRE_TLS_SERVER_NAME",
}


@dataclass(frozen=True)
class ChannelSettings:
    """Where and how to connect; TLS is on when `tls` is set or any TLS file is given.

    `tls_ca` is a PEM bundle to trust (None: the system's roots); `tls_cert`/`tls_key` are the
    client certificate for mTLS; `tls_server_name` overrides the name checked in the server's
    certificate (when the target is an IP or a local port-forward).
    """

    target: str
    token: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None

    @classmethod
    def resolve(
        cls,
        target: str,
        *,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> ChannelSettings:
        """Settings from keyword options, each None one taken from its JOBWIRE_* variable."""
        env = os.environ if environ is None else environ
        values = {
            name: options.get(name) if options.get(name) is not None else env.get(variable) or None
            for name, variable in ENV.items()
        }
        values = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in values.items()}
        if (values["tls_cert"] is None) != (values["tls_key"] is None):
            raise ValueError("tls_cert and tls_key (the client certificate) go together")
        return cls(target, tls=bool(options.get("tls")), **values)

    @property
    def secure(self) -> bool:
        return self.tls or self.tls_ca is not None or self.tls_cert is not None

    def _options(self) -> list[tuple[str, Any]]:
        if self.tls_server_name is None:
            return list(CHANNEL_OPTIONS)
        return [*CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", self.tls_server_name)]

    def _credentials(self) -> grpc.ChannelCredentials:
        """TLS credentials (files read now), with the token as per-call credentials."""
        ca = None if self.tls_ca is None else Path(self.tls_ca).read_bytes()
        cert = None if self.tls_cert is None else Path(self.tls_cert).read_bytes()
        key = None if self.tls_key is None else Path(self.tls_key).read_bytes()
        credentials = grpc.ssl_channel_credentials(ca, key, cert)
        if self.token is None:
            return credentials
        token = grpc.access_token_call_credentials(self.token)
        return grpc.composite_channel_credentials(credentials, token)

    def channel(self) -> grpc.Channel:
        """A blocking channel."""
        if self.secure:
            return grpc.secure_channel(self.target, self._credentials(), self._options())
        channel = grpc.insecure_channel(self.target, self._options())
        if self.token is None:
            return channel
        # Call credentials need TLS; without it (a mesh sidecar encrypts) send the header here.
        return grpc.intercept_channel(channel, _Bearer(self.token))

    def aio_channel(self) -> grpc.aio.Channel:
        """A grpc.aio channel (create it inside the event loop that will use it)."""
        if self.secure:
            return grpc.aio.secure_channel(self.target, self._credentials(), self._options())
        if self.token is None:
            return grpc.aio.insecure_channel(self.target, self._options())
        return grpc.aio.insecure_channel(
            self.target,
            self._options(),
            interceptors=[_AioBearerUnary(self.token), _AioBearerStream(self.token)],
        )


def _with_token(metadata: Any, token: str) -> list[tuple[str, str]]:
    return [*(metadata or ()), ("authorization", f"Bearer {token}")]


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds `authorization: Bearer <token>` to every call of a blocking channel."""

    def __init__(self, token: str) -> None:
        self.token = token

    def _details(self, details: Any) -> Any:
        return _CallDetails(
            details.method,
            details.timeout,
            _with_token(details.metadata, self.token),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)


class _CallDetails(grpc.ClientCallDetails):  # type: ignore[misc]
    def __init__(
        self,
        method: str,
        timeout: float | None,
        metadata: Any,
        credentials: Any,
        wait_for_ready: bool | None,
        compression: Any,
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def _aio_details(details: Any, token: str) -> Any:
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*_with_token(details.metadata, token)),
        details.credentials,
        details.wait_for_ready,
    )


class _AioBearerUnary(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds the bearer header to every unary call of a grpc.aio channel."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_aio_details(details, self.token), request)


class _AioBearerStream(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Adds the bearer header to every server-streaming call of a grpc.aio channel."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_aio_details(details, self.token), request)
