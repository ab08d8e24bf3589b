"""Bearer tokens with roles per namespace glob, checked in front of every RPC.

The token file (JOBWIRE_AUTH_FILE, TOML) lists tokens; each names its secret (or the secret's
SHA-256), the roles it holds and the namespaces (glob patterns) it may touch:

    [[token]]
    sha256 = "<hex SHA-256 of the secret>"   # or: secret = "..."
    roles = ["produce", "read"]             # read | produce | work | admin
    namespaces = ["shop", "shop-*"]         # "*": every namespace

Clients send `authorization: Bearer <secret>`. No or an unknown token is UNAUTHENTICATED; a role
or namespace the token lacks is PERMISSION_DENIED. `admin` holds every role. Health and
reflection stay open so probes and tools work without a token.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import logging
import tomllib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from broker.interceptors import PerMethodInterceptor

log = logging.getLogger("jobwire.broker")

ROLES = ("read", "produce", "work", "admin")

# The role each RPC needs, by full method name. Every RPC of proto/ is here (a test checks).
METHOD_ROLES: dict[str, str] = {
    "/jobwire.v1.JobService/Enqueue": "produce",
    "/jobwire.v1.JobService/BatchEnqueue": "produce",
    "/jobwire.v1.JobService/RetryJob": "produce",
    "/jobwire.v1.JobService/RemoveJob": "produce",
    "/jobwire.v1.JobService/NoteJob": "produce",
    "/jobwire.v1.JobService/Dequeue": "work",
    "/jobwire.v1.JobService/FinishJob": "work",
    "/jobwire.v1.JobService/FailJob": "work",
    "/jobwire.v1.JobService/CompleteJobs": "work",
    "/jobwire.v1.JobService/GetJob": "read",
    "/jobwire.v1.JobService/ListJobs": "read",
    "/jobwire.v1.WorkerService/RegisterWorker": "work",
    "/jobwire.v1.WorkerService/UnregisterWorker": "work",
    "/jobwire.v1.WorkerService/Subscribe": "work",
    "/jobwire.v1.WorkerService/Receive": "work",
    "/jobwire.v1.WorkerService/ListWorkers": "read",
    "/jobwire.v1.WorkerService/Broadcast": "admin",
    "/jobwire.v1.LockService/AcquireLock": "work",
    "/jobwire.v1.LockService/ReleaseLock": "work",
    "/jobwire.v1.LockService/ListLocks": "read",
    "/jobwire.v1.ScheduleService/UpsertSchedule": "admin",
    "/jobwire.v1.ScheduleService/DeleteSchedule": "admin",
    "/jobwire.v1.ScheduleService/PauseSchedule": "admin",
    "/jobwire.v1.ScheduleService/ResumeSchedule": "admin",
    "/jobwire.v1.ScheduleService/ListSchedules": "read",
    "/jobwire.v1.ScheduleService/DispatchSchedules": "admin",
    "/jobwire.v1.AdminService/Stats": "read",
    "/jobwire.v1.AdminService/History": "read",
    "/jobwire.v1.AdminService/Repair": "admin",
    "/jobwire.v1.AdminService/Reset": "admin",
}

# Services anyone may call: health checks (probes, balancers) and reflection (grpcurl).
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)

UNAUTHENTICATED = (grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")
DENIED = (grpc.StatusCode.PERMISSION_DENIED, "the token may not do this in this namespace")

Denial = tuple[grpc.StatusCode, str]


@dataclass(frozen=True, slots=True)
class Token:
    """One entry of the token file: its secret's digest, roles and namespace patterns."""

    digest: bytes
    roles: frozenset[str]
    namespaces: tuple[str, ...]
    name: str  # "token #N" (1-based position in the file), for logs; never the secret

    def allows(self, role: str, namespace: str) -> bool:
        """Whether this token holds `role` (or admin) in `namespace`."""
        if role not in self.roles and "admin" not in self.roles:
            return False
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces)


class TokenTable:
    """The tokens of one file; `find` compares digests in constant time."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tuple(tokens)

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        """Read and check a token file; ValueError names the file and the bad entry."""
        try:
            with path.open("rb") as file:
                data = tomllib.load(file)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ValueError(f"token file {path}: {error}") from None
        entries = data.get("token", [])
        unknown = set(data) - {"token"}
        if unknown or not isinstance(entries, list):
            raise ValueError(f"token file {path}: expected only [[token]] tables")
        tokens = []
        for position, entry in enumerate(entries, 1):
            try:
                tokens.append(_token(entry, f"token #{position}"))
            except ValueError as error:
                raise ValueError(f"token file {path}: token #{position}: {error}") from None
        return cls(tokens)

    def find(self, secret: str) -> Token | None:
        """The token whose secret this is, or None; looks at every entry whatever matches."""
        digest = hashlib.sha256(secret.encode()).digest()
        found = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.digest):
                found = token
        return found


def _token(entry: Any, name: str) -> Token:
    if not isinstance(entry, dict):
        raise ValueError("must be a table")
    unknown = set(entry) - {"sha256", "secret", "roles", "namespaces"}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    if ("sha256" in entry) == ("secret" in entry):
        raise ValueError("needs exactly one of sha256 and secret")
    if "secret" in entry:
        secret = entry["secret"]
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValueError("secret must be a string of at least 16 characters")
        digest = hashlib.sha256(secret.encode()).digest()
    else:
        try:
            digest = bytes.fromhex(entry["sha256"])
        except (TypeError, ValueError):
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError("sha256 must be 64 hex digits")
    roles = entry.get("roles")
    if not isinstance(roles, list) or not roles or not set(roles) <= set(ROLES):
        raise ValueError(f"roles must be a non-empty list of {', '.join(ROLES)}")
    namespaces = entry.get("namespaces")
    if (
        not isinstance(namespaces, list)
        or not namespaces
        or not all(isinstance(pattern, str) and pattern for pattern in namespaces)
    ):
        raise ValueError('namespaces must be a non-empty list of glob patterns ("*": all)')
    return Token(digest, frozenset(roles), tuple(namespaces), name)


def bearer(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The secret of the `authorization: Bearer <secret>` header, if one was sent."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, secret = value.partition(" ")
            if scheme.lower() == "bearer" and secret.strip():
                return secret.strip()
    return None


class Authorizer:
    """Decides each call from its token, method and namespace; `reload` swaps the token file."""

    def __init__(self, path: Path, default_namespace: str) -> None:
        self.path = path
        self.default_namespace = default_namespace
        self.table = TokenTable.load(path)

    def reload(self) -> bool:
        """Re-read the token file; a bad file keeps the current tokens and logs why."""
        try:
            table = TokenTable.load(self.path)
        except ValueError as error:
            kept = len(self.table.tokens)
            log.error("token file not reloaded, keeping %d tokens: %s", kept, error)
            return False
        self.table = table
        log.info("token file reloaded: %d tokens", len(table.tokens))
        return True

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> Token | None:
        """The token the call presents, or None when it presents none or an unknown one."""
        secret = bearer(metadata)
        return None if secret is None else self.table.find(secret)

    def authorize(self, token: Token, role: str, namespace: str) -> Denial | None:
        """None when `token` may act as `role` in the request's namespace, else the denial."""
        # Empty means the default namespace. A malformed one is judged as sent; if it is
        # allowed, the servicer then rejects it as INVALID_ARGUMENT.
        namespace = namespace or self.default_namespace
        if token.allows(role, namespace):
            return None
        log.info("denied: %s lacks %s in namespace %r", token.name, role, namespace)
        return DENIED


class AuthInterceptor(PerMethodInterceptor):
    """Wraps each RPC's behaviour so the decoded request's namespace can be authorized.

    One wrapper per method: each call costs the token lookup and the role and namespace check,
    not a new handler. Health and reflection stay open.
    """

    def __init__(self, authorizer: Authorizer) -> None:
        super().__init__()
        self.authorizer = authorizer

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if method.lstrip("/").rpartition("/")[0] in OPEN_SERVICES:
            return handler
        return self._guard(method, handler)

    def _guard(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        authorizer = self.authorizer
        role = METHOD_ROLES.get(method)

        def denial(context: grpc.aio.ServicerContext, namespace: str) -> Denial | None:
            token = authorizer.authenticate(context.invocation_metadata())
            if token is None:
                return UNAUTHENTICATED
            if role is None:  # not in the table: nobody may call it
                return DENIED
            return authorizer.authorize(token, role, namespace)

        if role is None or handler.request_streaming:
            return _refusing(handler, lambda context: denial(context, "") or DENIED)
        if handler.response_streaming:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                refused = denial(context, request.namespace)
                if refused is not None:
                    await context.abort(*refused)
                result = inner_stream(request, context)
                if hasattr(result, "__aiter__"):
                    async for message in result:
                        yield message
                else:  # a coroutine writing with context.write()
                    await result

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        inner_unary = handler.unary_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            refused = denial(context, request.namespace)
            if refused is not None:
                await context.abort(*refused)
            return await inner_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary, handler.request_deserializer, handler.response_serializer
        )


def _refusing(
    handler: grpc.RpcMethodHandler, denial: Callable[[grpc.aio.ServicerContext], Denial]
) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that ends every call with `denial(context)`."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(*denial(context))

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(*denial(context))
        yield  # pragma: no cover - makes this an async generator

    kinds = (handler.request_streaming, handler.response_streaming)
    deserialize, serialize = handler.request_deserializer, handler.response_serializer
    if kinds == (False, False):
        return grpc.unary_unary_rpc_method_handler(refuse, deserialize, serialize)
    if kinds == (False, True):
        return grpc.unary_stream_rpc_method_handler(refuse_stream, deserialize, serialize)
    if kinds == (True, False):
        return grpc.stream_unary_rpc_method_handler(refuse, deserialize, serialize)
    return grpc.stream_stream_rpc_method_handler(refuse_stream, deserialize, serialize)


def is_loopback(listen: str) -> bool:
    """Whether a listen address (host:port, [v6]:port, unix:path) is reachable only locally."""
    import ipaddress

    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or wildcard: assume it is reachable from elsewhere


def exposure_problem(
    listen: str, *, tokens: bool, client_certificates: bool, allow_insecure: bool
) -> str | None:
    """Why the broker must not start this way, or None: beyond loopback it needs tokens or mTLS."""
    if tokens or client_certificates or allow_insecure or is_loopback(listen):
        return None
    return (
        f"refusing to listen on {listen} without authentication: set JOBWIRE_AUTH_FILE (tokens) "
        "or JOBWIRE_TLS_CLIENT_CA (mTLS), or JOBWIRE_ALLOW_INSECURE=1 behind an mTLS mesh"
    )
