"""Optional OpenTelemetry glue: clients send the current trace context (W3C `traceparent`) as
call metadata; the worker runs each job in a span that continues its producer's trace.

Without the `opentelemetry-api` package (extra `otel`) every function here does nothing.
"""

from __future__ import annotations

from typing import Any

from jobwire.types import DequeuedJob

try:
    from opentelemetry import context, propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    HAVE_OTEL = True
except ImportError:  # pragma: no cover - the otel extra is not installed
    HAVE_OTEL = False

Metadata = tuple[tuple[str, str], ...]


def metadata() -> Metadata | None:
    """The current span's trace context as gRPC metadata; None outside a span."""
    if not HAVE_OTEL or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple(carrier.items()) or None


def start_job(job: DequeuedJob) -> Any:
    """Starts the job's span (a child of the producer's span when the job carries one) and makes
    it current in the calling task; None without opentelemetry."""
    if not HAVE_OTEL:
        return None
    parent = propagate.extract({"traceparent": job.traceparent}) if job.traceparent else None
    span = trace.get_tracer("jobwire.worker").start_span(
        f"jobwire.job {job.task}",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "jobwire",
            "messaging.destination.name": job.queue,
            "messaging.message.id": str(job.id),
            "jobwire.task": job.task,
            "jobwire.attempt": job.retries + 1,
        },
    )
    context.attach(trace.set_span_in_context(span))
    return span


def end_job(span: Any, outcome: str, result: Any) -> None:
    """Ends a span from `start_job` with the job's outcome."""
    if span is None:
        return
    span.set_attribute("jobwire.outcome", outcome)
    if outcome == "failed":
        summary = result.get("error", result) if isinstance(result, dict) else result
        span.set_status(Status(StatusCode.ERROR, str(summary)[:200]))
    span.end()
