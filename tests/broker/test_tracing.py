"""Tracing: the Enqueue's W3C trace context travels with the job to the worker, so one trace
runs producer -> broker -> worker. The producer (this process) and the broker + worker (a child
process) each record their spans with OpenTelemetry's in-memory exporter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import grpc
import pytest

from jobwire import Client
from jobwire.v1 import job_service_pb2, job_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _enqueue_with_metadata(target: str, namespace: str, traceparent: str) -> int:
    with grpc.insecure_channel(target) as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        request = job_service_pb2.EnqueueRequest(namespace=namespace, task="t")
        response = stub.Enqueue(request, metadata=[("traceparent", traceparent)], timeout=10)
        return int(response.id)


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(TRACEPARENT, TRACEPARENT), ("garbage", ""), (TRACEPARENT.upper(), TRACEPARENT)],
)
def test_traceparent_is_stored_and_dequeued(
    broker: Any, client: Client, sent: str, stored: str
) -> None:
    job_id = _enqueue_with_metadata(broker.target, client.namespace, sent)
    worker = client.register_worker()
    job = client.dequeue(worker)
    assert job is not None and job.id == job_id
    assert job.traceparent == stored


def test_jobs_without_trace_context_have_none(client: Client) -> None:
    client.enqueue("plain")
    job = client.dequeue(client.register_worker())
    assert job is not None and job.traceparent == ""


CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, threading
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from broker.config import Settings
    from broker.server import Broker
    from jobwire import Client, Worker

    redis_url, namespace = sys.argv[1:3]

    async def main():
        broker = Broker(Settings(listen="127.0.0.1:0", redis_url=redis_url, http_listen="",
                                 repair_interval=0, dispatch_interval=0))
        port = await broker.start()
        worker = Worker(Client(f"127.0.0.1:{port}", namespace=namespace), concurrency=1)

        @worker.task("traced")
        async def traced(job, n):
            return n + 1

        thread = threading.Thread(target=lambda: asyncio.run(worker.run_async()), daemon=True)
        thread.start()
        await asyncio.to_thread(worker.ready.wait, 10)
        print(port, flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the producer is done
        worker.stop()
        await asyncio.to_thread(thread.join, 10)
        await broker.stop(0.5)

    asyncio.run(main())
    for span in exporter.get_finished_spans():
        print(json.dumps({
            "name": span.name,
            "kind": span.kind.name,
            "trace": format(span.context.trace_id, "032x"),
            "id": format(span.context.span_id, "016x"),
            "parent": format(span.parent.span_id, "016x") if span.parent else None,
        }))
    """
)


def test_one_trace_from_producer_through_broker_to_worker(
    redis_server: str, namespace: str, tmp_path: Path
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    # The producer's own provider (not the global one: other tests stay untraced).
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("producer")

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}"}
    with (tmp_path / "child.err").open("wb") as err:
        child = subprocess.Popen(
            [sys.executable, str(script), redis_server, namespace],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert child.stdout is not None
        port = child.stdout.readline().strip()
        assert port, (tmp_path / "child.err").read_text()
        with Client(f"127.0.0.1:{port}", namespace=namespace) as client:
            with tracer.start_as_current_span("produce"):
                job_id = client.enqueue("traced", [41])
            info = client.result(job_id, interval=0.02, timeout=20)
            assert info is not None and info.result == 42
        out, _ = child.communicate("done\n", timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, (tmp_path / "child.err").read_text()

    (produce,) = exporter.get_finished_spans()
    trace_id = format(produce.context.trace_id, "032x")
    produce_id = format(produce.context.span_id, "016x")
    spans = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_name = {s["name"]: s for s in spans if s["trace"] == trace_id}
    # Broker: the Enqueue call is a child of the producer's span, its script a child of it.
    enqueue = by_name["jobwire.v1.JobService/Enqueue"]
    assert (enqueue["kind"], enqueue["parent"]) == ("SERVER", produce_id)
    script_span = by_name["redis enqueue"]
    assert (script_span["kind"], script_span["parent"]) == ("CLIENT", enqueue["id"])
    # Worker: the job's span is a child of the producer's span, in the same trace.
    job = by_name["jobwire.job traced"]
    assert (job["kind"], job["parent"]) == ("CONSUMER", produce_id)
    # Calls the worker makes while running the job (none here) and its completion belong to
    # other traces; nothing else joined the producer's trace beyond the broker and job spans.
    assert set(by_name) <= {"jobwire.v1.JobService/Enqueue", "redis enqueue", "jobwire.job traced"}


def test_everything_works_without_opentelemetry(redis_server: str, namespace: str) -> None:
    # A process where `import opentelemetry` fails, as without the otel extra.
    code = textwrap.dedent(
        """
        import asyncio, sys
        sys.modules["opentelemetry"] = None
        from broker import tracing
        from broker.config import Settings
        from broker.server import Broker
        from jobwire import AsyncClient, _tracing

        assert not tracing.HAVE_OTEL and not tracing.enabled() and not _tracing.HAVE_OTEL

        async def main():
            broker = Broker(Settings(listen="127.0.0.1:0", redis_url=sys.argv[1],
                                     http_listen="", repair_interval=0, dispatch_interval=0))
            port = await broker.start()
            async with AsyncClient(f"127.0.0.1:{port}", namespace=sys.argv[2]) as client:
                await client.enqueue("t")
                worker = await client.register_worker()
                job = await client.dequeue(worker)
                assert job is not None and job.traceparent == ""
                assert _tracing.start_job(job) is None
            await broker.stop(0.5)
            print("ok")

        asyncio.run(main())
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'sdk' / 'python'}"}
    done = subprocess.run(
        [sys.executable, "-c", code, redis_server, namespace],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
