"""SIGTERM while a burst of unary calls is in flight: every call ends OK or UNAVAILABLE (which
standard gRPC retry policies retry), never CANCELLED."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from jobwire.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    worker_service_pb2,
    worker_service_pb2_grpc,
)
from tests.faults.harness import Processes

CALLERS = 40  # concurrent callers per kind (enqueue, long-poll dequeue)


async def _burst(target: str, namespace: str, sigterm: Callable[[], None]) -> Counter[str]:
    """Run callers until each has seen the broker go (UNAVAILABLE) or 15 s passed; SIGTERM the
    broker 0.5 s into the burst. Returns how many calls ended with each status."""
    codes: Counter[str] = Counter()
    async with grpc.aio.insecure_channel(target) as channel:
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        workers = worker_service_pb2_grpc.WorkerServiceStub(channel)
        registered = await workers.RegisterWorker(
            worker_service_pb2.RegisterWorkerRequest(namespace=namespace), timeout=5
        )
        worker_id = registered.id
        stop_at = time.monotonic() + 15

        async def call(make: Callable[[], Awaitable[object]]) -> None:
            while time.monotonic() < stop_at:
                try:
                    await make()
                    codes["OK"] += 1
                except grpc.aio.AioRpcError as error:
                    codes[error.code().name] += 1
                    if error.code() == grpc.StatusCode.UNAVAILABLE:
                        return

        async def enqueue() -> object:
            request = job_service_pb2.EnqueueRequest(namespace=namespace, task="t")
            return await jobs.Enqueue(request, timeout=10)

        async def dequeue() -> object:  # a long poll
            request = job_service_pb2.DequeueRequest(
                namespace=namespace, worker_id=worker_id, wait=Duration(seconds=3)
            )
            return await jobs.Dequeue(request, timeout=10)

        callers = [asyncio.create_task(call(enqueue)) for _ in range(CALLERS)]
        callers += [asyncio.create_task(call(dequeue)) for _ in range(CALLERS)]
        await asyncio.sleep(0.5)
        sigterm()
        await asyncio.gather(*callers)
    return codes


@pytest.mark.timeout(60)
@pytest.mark.parametrize("round_", range(3))
def test_sigterm_ends_in_flight_calls_ok_or_unavailable(
    procs: Processes, namespace: str, round_: int
) -> None:
    redis = procs.redis(aof=False)
    broker = procs.broker("broker", redis.url, grace_period=5)
    sent = time.monotonic()
    codes = asyncio.run(
        _burst(broker.target, namespace, lambda: broker.proc.signal(signal.SIGTERM))
    )
    exit_code = broker.proc.popen.wait(15)
    print(
        f"\n[faults] SIGTERM under load (round {round_}): {dict(codes)} "
        f"exit={exit_code} after {time.monotonic() - sent:.1f}s"
    )
    assert set(codes) <= {"OK", "UNAVAILABLE"}, codes
    assert codes["OK"] > 0 and codes["UNAVAILABLE"] > 0
    assert exit_code == 0
