"""Broker settings: the only module that reads the environment (JOBWIRE_*) or settings flags.

Every setting is one field of the frozen `Settings` dataclass, with one environment variable and
one matching CLI flag (JOBWIRE_MISSING_AFTER <-> --missing-after). Flags override the
environment; an empty variable counts as unset. Build it once at startup and pass it down.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

ENV_PREFIX = "JOBWIRE_"
MIB = 1024 * 1024
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
LOG_FORMATS = ("text", "json")
# The HTTP port (metrics, health) when JOBWIRE_HTTP_LISTEN is unset; skipped if taken.
DEFAULT_HTTP_LISTEN = "127.0.0.1:8080"
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the broker can be told, validated on construction (also by `replace`)."""

    listen: str = "127.0.0.1:50051"
    redis_url: str | None = None  # None: start an embedded redis-server under data_dir
    data_dir: Path = Path("./jobwire-data")
    namespace: str = "default"
    missing_after: float = 1800.0
    remove_after: float = 172800.0
    stuck_after: float = 172800.0
    repair_interval: float = 60.0  # 0 disables the repair loop
    stream_missing_after: float = 30.0  # missing_after for workers connected by stream
    lease_duration: float = 1800.0  # leases of workers that set none (Minion-style clients)
    lease_grace: float = 10.0  # an unlisted job younger than this may still be in transit
    lease_check_interval: float = 1.0  # seconds between expired-lease reclaims, 0: off
    max_message_bytes: int = 4 * MIB  # most bytes in one message the broker sends
    keepalive_interval: float = 15.0
    dispatch_interval: float = 1.0  # 0 disables the schedule dispatcher
    grace_period: float = 10.0
    max_payload_bytes: int = 4 * MIB
    log_level: str = "INFO"
    tls_cert: Path | None = None  # PEM certificate chain; with tls_key: serve TLS
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # PEM CA bundle; set: clients must present a certificate
    auth_file: Path | None = None  # TOML token file; set: every RPC needs a bearer token
    allow_insecure: bool = False  # listen beyond loopback with neither tokens nor mTLS
    max_namespaces: int = 10_000  # a write registering one more answers RESOURCE_EXHAUSTED
    max_concurrent_rpcs: int = 10_000  # calls in progress (streams too) before RESOURCE_EXHAUSTED
    max_streams: int = 5000  # open Subscribe streams on this replica
    ping_interval: float = 60.0  # HTTP/2 keepalive pings to each client connection
    ping_timeout: float = 20.0  # a connection whose ping is not answered by then is closed
    # None: DEFAULT_HTTP_LISTEN if that address is free (else none); "": no HTTP port.
    http_listen: str | None = None
    log_format: str = "text"

    def __post_init__(self) -> None:
        for name, spec in SPECS.items():
            value = getattr(self, name)
            problem = spec.check(value) if value is not None else None
            if problem is not None:
                raise ValueError(f"{label(name)} {problem}, got {value!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(f"{label('tls_cert')} and {label('tls_key')} must be set together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError(f"{label('tls_client_ca')} needs {label('tls_cert')} and tls_key")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from JOBWIRE_* variables (default: os.environ); unset ones default."""
        return cls._from_raw(_raw_from_env(environ))

    @classmethod
    def from_args(
        cls, namespace_obj: argparse.Namespace, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from flags parsed by `add_arguments`, falling back to the environment."""
        raw = _raw_from_env(environ)
        for name in SPECS:
            value = getattr(namespace_obj, name, None)
            if value is not None:
                raw[name] = str(value)
        return cls._from_raw(raw)

    @classmethod
    def _from_raw(cls, raw: Mapping[str, str]) -> Settings:
        """Parse raw strings keyed by field name; blank ones keep their default."""
        values: dict[str, Any] = {}
        for name, text in raw.items():
            text = text.strip()
            if not text and name not in BLANK_DISABLES:
                continue
            try:
                values[name] = SPECS[name].parse(text)
            except ValueError as exc:
                raise ValueError(f"{label(name)} {exc}, got {text!r}") from None
        return cls(**values)

    def replace(self, **overrides: Any) -> Settings:
        """Return a copy with some fields changed (validated like the original)."""
        return dataclasses.replace(self, **overrides)


# --- parsers raise ValueError("must be ..."); checks return None or "must be ..." -------------


def _parse_float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("must be a number") from None


def _parse_int(raw: str) -> int:
    try:
        return int(raw, 0)  # 4194304, 4_194_304 or 0x400000
    except ValueError:
        raise ValueError("must be an integer") from None


def _parse_str(raw: str) -> str:
    return raw


def _parse_upper(raw: str) -> str:
    return raw.upper()


def _parse_bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be 1/true/yes/on or 0/false/no/off")


def _positive(value: float) -> str | None:
    return None if math.isfinite(value) and value > 0 else "must be a number > 0"


def _non_negative(value: float) -> str | None:
    return None if math.isfinite(value) and value >= 0 else "must be a number >= 0 (0 disables)"


def _message_bytes(value: int) -> str | None:
    return None if value >= 64 * 1024 else "must be at least 65536"


def _namespace(value: str) -> str | None:
    return None if _NAMESPACE_RE.fullmatch(value) else "must match ^[A-Za-z0-9_.-]{1,64}$"


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _log_level(value: str) -> str | None:
    return None if value in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


def _any(value: object) -> str | None:
    return None


def _log_format(value: str) -> str | None:
    return None if value in LOG_FORMATS else f"must be one of {', '.join(LOG_FORMATS)}"


def _listen_or_empty(value: str) -> str | None:
    if value == "":
        return None
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and int(port) <= 65535:
        return None
    return "must be host:port (port 0 picks a free one) or empty (no HTTP port)"


class Spec(NamedTuple):
    """How one setting is read: its variable, parser, check and help line."""

    env: str
    parse: Callable[[str], Any]
    check: Callable[[Any], str | None]
    help: str

    @property
    def flag(self) -> str:
        """The CLI flag, derived from the variable: JOBWIRE_MISSING_AFTER -> --missing-after."""
        return "--" + self.env.removeprefix(ENV_PREFIX).lower().replace("_", "-")


# One entry per Settings field, in the same order.
SPECS: dict[str, Spec] = {
    "listen": Spec("JOBWIRE_LISTEN", _parse_str, _non_empty, "gRPC listen address, host:port"),
    "redis_url": Spec(
        "JOBWIRE_REDIS_URL", _parse_str, _non_empty, "Redis URL; unset starts an embedded Redis"
    ),
    "data_dir": Spec("JOBWIRE_DATA_DIR", Path, _any, "data directory of the embedded Redis"),
    "namespace": Spec("JOBWIRE_NAMESPACE", _parse_str, _namespace, "default namespace"),
    "missing_after": Spec(
        "JOBWIRE_MISSING_AFTER", _parse_float, _positive, "seconds until a silent worker is missing"
    ),
    "remove_after": Spec(
        "JOBWIRE_REMOVE_AFTER", _parse_float, _positive, "seconds until finished jobs are removed"
    ),
    "stuck_after": Spec(
        "JOBWIRE_STUCK_AFTER", _parse_float, _positive, "seconds until a waiting job is stuck"
    ),
    "repair_interval": Spec(
        "JOBWIRE_REPAIR_INTERVAL", _parse_float, _non_negative, "seconds between repairs, 0: off"
    ),
    "stream_missing_after": Spec(
        "JOBWIRE_STREAM_MISSING_AFTER", _parse_float, _positive, "missing_after for stream workers"
    ),
    "lease_duration": Spec(
        "JOBWIRE_LEASE_DURATION",
        _parse_float,
        _positive,
        "seconds a job's lease lasts between heartbeats, for workers that set none",
    ),
    "lease_grace": Spec(
        "JOBWIRE_LEASE_GRACE",
        _parse_float,
        _positive,
        "seconds before a job a worker's heartbeat does not list is handed back",
    ),
    "lease_check_interval": Spec(
        "JOBWIRE_LEASE_CHECK_INTERVAL",
        _parse_float,
        _non_negative,
        "seconds between reclaims of expired leases, 0: off",
    ),
    "max_message_bytes": Spec(
        "JOBWIRE_MAX_MESSAGE_BYTES",
        _parse_int,
        _message_bytes,
        "most bytes in one message the broker sends (clients accept 4 MiB by default)",
    ),
    "keepalive_interval": Spec(
        "JOBWIRE_KEEPALIVE_INTERVAL", _parse_float, _positive, "seconds between stream keepalives"
    ),
    "dispatch_interval": Spec(
        "JOBWIRE_SCHEDULE_INTERVAL", _parse_float, _non_negative, "seconds between schedule runs"
    ),
    "grace_period": Spec(
        "JOBWIRE_GRACE_PERIOD", _parse_float, _non_negative, "seconds to drain calls on shutdown"
    ),
    "max_payload_bytes": Spec(
        "JOBWIRE_MAX_PAYLOAD", _parse_int, _positive, "largest accepted message, bytes"
    ),
    "log_level": Spec("JOBWIRE_LOG_LEVEL", _parse_upper, _log_level, ", ".join(LOG_LEVELS)),
    "tls_cert": Spec("JOBWIRE_TLS_CERT", Path, _any, "PEM certificate chain; serves TLS"),
    "tls_key": Spec("JOBWIRE_TLS_KEY", Path, _any, "PEM private key of the certificate"),
    "tls_client_ca": Spec(
        "JOBWIRE_TLS_CLIENT_CA", Path, _any, "PEM CA bundle; requires client certificates (mTLS)"
    ),
    "auth_file": Spec("JOBWIRE_AUTH_FILE", Path, _any, "TOML file of bearer tokens and roles"),
    "allow_insecure": Spec(
        "JOBWIRE_ALLOW_INSECURE", _parse_bool, _any, "1: listen beyond loopback with no auth"
    ),
    "max_namespaces": Spec(
        "JOBWIRE_MAX_NAMESPACES", _parse_int, _positive, "most namespaces writes may register"
    ),
    "max_concurrent_rpcs": Spec(
        "JOBWIRE_MAX_CONCURRENT_RPCS", _parse_int, _positive, "most calls in progress at once"
    ),
    "max_streams": Spec(
        "JOBWIRE_MAX_STREAMS", _parse_int, _positive, "most open Subscribe streams per replica"
    ),
    "ping_interval": Spec(
        "JOBWIRE_PING_INTERVAL", _parse_float, _positive, "seconds between HTTP/2 pings"
    ),
    "ping_timeout": Spec(
        "JOBWIRE_PING_TIMEOUT", _parse_float, _positive, "seconds an HTTP/2 ping may go unanswered"
    ),
    "http_listen": Spec(
        "JOBWIRE_HTTP_LISTEN",
        _parse_str,
        _listen_or_empty,
        "HTTP address (/metrics, /healthz, /readyz), host:port; empty: none",
    ),
    "log_format": Spec("JOBWIRE_LOG_FORMAT", str.lower, _log_format, ", ".join(LOG_FORMATS)),
}
# Settings whose blank value means "off" rather than "unset".
BLANK_DISABLES = frozenset({"http_listen"})
# What an unset (None) setting means, for --help.
UNSET_MEANS = {"redis_url": "embedded", "http_listen": f"{DEFAULT_HTTP_LISTEN} if free"}
if list(SPECS) != [f.name for f in dataclasses.fields(Settings)]:  # pragma: no cover
    raise RuntimeError("broker.config: SPECS and Settings fields are out of sync")


def label(name: str) -> str:
    """Name a setting the way a user sets it: 'JOBWIRE_MISSING_AFTER (--missing-after)'."""
    spec = SPECS[name]
    return f"{spec.env} ({spec.flag})"


def _raw_from_env(environ: Mapping[str, str] | None) -> dict[str, str]:
    """Collect the raw JOBWIRE_* strings, keyed by field name."""
    env = os.environ if environ is None else environ
    return {name: env[spec.env] for name, spec in SPECS.items() if spec.env in env}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per setting to `parser`; unset flags stay None so the environment applies."""
    group = parser.add_argument_group("broker settings (flags override JOBWIRE_* variables)")
    defaults = Settings()
    for name, spec in SPECS.items():
        default = getattr(defaults, name)
        shown = UNSET_MEANS.get(name, "unset") if default is None else default
        help_text = f"{spec.help} [env {spec.env}, default {shown}]"
        group.add_argument(
            spec.flag,
            dest=name,
            default=None,
            metavar=spec.env.removeprefix(ENV_PREFIX),
            help=help_text.replace("%", "%%"),
        )


# OpenTelemetry's own variables: any of these turns tracing on; the SDK reads the rest itself.
OTEL_TRACING_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def trace_exporter(environ: Mapping[str, str] | None = None) -> str | None:
    """The span exporter the standard OTEL_* variables ask for ("otlp", "console" ...), or None
    when they ask for none (tracing off)."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if not any(env.get(name, "").strip() for name in OTEL_TRACING_VARIABLES):
        return None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower() or "otlp"
    return None if exporter == "none" else exporter
