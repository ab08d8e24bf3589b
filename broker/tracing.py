"""OpenTelemetry tracing: a span per RPC, a child span per Redis script call, trace context kept
with each job so that the worker's span joins the producer's trace.

Optional: without the `opentelemetry` packages (extra `otel`) or without a tracer provider, the
broker installs nothing and only passes the producer's `traceparent` through to the job. The
process sets a provider up from the standard OTEL_* variables (`setup`); tests install their own.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from broker.interceptors import PerMethodInterceptor

log = logging.getLogger("jobwire.tracing")

# W3C trace context: version-traceid-parentid-flags, lowercase hex.
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    HAVE_OTEL = True
except ImportError:  # pragma: no cover - the otel extra is not installed
    HAVE_OTEL = False


def traceparent(context: grpc.aio.ServicerContext) -> str:
    """The caller's W3C `traceparent` metadata if well formed, else "" (never an error)."""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent" and isinstance(value, str):
            value = value.strip().lower()
            return value if _TRACEPARENT.match(value) else ""
    return ""


def enabled() -> bool:
    """True when opentelemetry is installed and a real tracer provider is set."""
    if not HAVE_OTEL:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def setup(exporter: str) -> Callable[[], None] | None:
    """Installs a tracer provider that sends spans to `exporter` ("otlp": OTLP over gRPC as the
    OTEL_EXPORTER_OTLP_* variables say; "console"); returns its shutdown, or None when tracing
    cannot be set up (logged)."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        log.warning("OTEL_* variables ask for traces but opentelemetry is not installed "
                    "(pip install 'jobwire[otel]'); tracing is off")  # fmt: skip
        return None
    if exporter == "console":
        span_exporter: Any = ConsoleSpanExporter()
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.warning("opentelemetry-exporter-otlp-proto-grpc is not installed; tracing is off")
            return None
        span_exporter = OTLPSpanExporter()
    else:
        log.warning("OTEL_TRACES_EXPORTER=%s is not supported (otlp, console); tracing is off",
                    exporter)  # fmt: skip
        return None
    resource = Resource.create({})  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "jobwire-broker"}))
    provider = TracerProvider(resource=resource)  # OTEL_TRACES_SAMPLER applies
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing: exporting spans (%s)", exporter)
    return provider.shutdown


class Tracing:
    """The broker's instrumentation: the gRPC interceptor and the ScriptRunner observer."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("jobwire.broker")
        self.interceptor = TracingInterceptor(self.tracer)

    def script_called(self, name: str, started_ns: int, error: BaseException | None) -> None:
        """A span for a script call made inside a traced RPC (background loops stay quiet)."""
        if not trace.get_current_span().get_span_context().is_valid:
            return
        span = self.tracer.start_span(
            f"redis {name}",
            kind=SpanKind.CLIENT,
            start_time=started_ns,
            attributes={"db.system": "redis", "db.operation": "EVALSHA", "jobwire.script": name},
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.end()


def _finish(span: Any, context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> None:
    code = context.code()
    code = code if isinstance(code, grpc.StatusCode) else default
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code != grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))


class TracingInterceptor(PerMethodInterceptor):
    """One SERVER span per call, a child of the caller's `traceparent` when it sends one."""

    def __init__(self, tracer: Any) -> None:
        super().__init__()
        self.tracer = tracer

    def _start(self, method: str, context: grpc.aio.ServicerContext) -> Any:
        carrier = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        service, _, name = method.lstrip("/").partition("/")
        return self.tracer.start_as_current_span(
            method.lstrip("/"),
            context=propagate.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
            record_exception=False,
            set_status_on_exception=False,
        )

    def wrap(self, method: str, handler: Any) -> Any:
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with self._start(method, context) as span:
                    try:
                        response = inner(request, context)
                        if inspect.isawaitable(response):
                            response = await response
                    except asyncio.CancelledError:
                        span.set_status(Status(StatusCode.ERROR, "CANCELLED"))
                        raise
                    except Exception:
                        _finish(span, context, grpc.StatusCode.UNKNOWN)
                        raise
                    _finish(span, context, grpc.StatusCode.OK)
                    return response

            return grpc.unary_unary_rpc_method_handler(unary, **kwargs)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                with self._start(method, context) as span:
                    try:
                        async for message in inner_stream(request, context):
                            yield message
                    except (asyncio.CancelledError, GeneratorExit):
                        span.set_status(Status(StatusCode.ERROR, "CANCELLED"))
                        raise
                    except Exception:
                        _finish(span, context, grpc.StatusCode.UNKNOWN)
                        raise
                    _finish(span, context, grpc.StatusCode.OK)

            return grpc.unary_stream_rpc_method_handler(stream, **kwargs)
        return handler
