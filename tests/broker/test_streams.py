"""WorkerService.Subscribe through the real broker: what is pushed, when, and what survives a
stream that ends (raw stubs, so the contract itself is under test)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from jobwire import Client
from jobwire.v1 import (
    job_pb2,
    job_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from jobwire.v1 import (
    job_service_pb2 as jpb,
)
from jobwire.v1 import (
    worker_service_pb2 as wpb,
)


class StreamReader:
    """Reads a Subscribe stream in a thread; messages land in a queue, the end status in .status."""

    def __init__(self, channel: grpc.Channel, request: wpb.SubscribeRequest) -> None:
        self.call = worker_service_pb2_grpc.WorkerServiceStub(channel).Subscribe(request)
        self.messages: queue.Queue[wpb.SubscribeResponse] = queue.Queue()
        self.status: grpc.StatusCode | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self.messages.put(message)
        except grpc.RpcError as error:
            self.status = error.code()

    def next(self, timeout: float = 5) -> wpb.SubscribeResponse:
        return self.messages.get(timeout=timeout)

    def jobs(self, count: int, timeout: float = 5) -> list[job_pb2.DequeuedJob]:
        got: list[job_pb2.DequeuedJob] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            got += self.next(max(deadline - time.monotonic(), 0.01)).jobs
        return got

    def quiet(self, seconds: float = 0.3) -> list[wpb.SubscribeResponse]:
        """Messages (other than keepalives) that arrive within `seconds`."""
        time.sleep(seconds)
        out = []
        while not self.messages.empty():
            message = self.messages.get()
            if message.jobs or message.commands:
                out.append(message)
        return out

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(5)


@pytest.fixture
def open_stream(channel: grpc.Channel, namespace: str) -> Iterator[Any]:
    readers: list[StreamReader] = []

    def open_(
        worker_id: int, concurrency: int = 1, ch: grpc.Channel | None = None, **kw: Any
    ) -> StreamReader:
        request = wpb.SubscribeRequest(
            namespace=namespace, worker_id=worker_id, concurrency=concurrency, **kw
        )
        reader = StreamReader(ch or channel, request)
        readers.append(reader)
        return reader

    yield open_
    for reader in readers:
        reader.close()


def finish(client: Client, job: job_pb2.DequeuedJob) -> None:
    assert client.finish_job(job.id, job.retries)


def test_unregistered_worker_is_refused(channel: grpc.Channel, namespace: str) -> None:
    stub = worker_service_pb2_grpc.WorkerServiceStub(channel)
    with pytest.raises(grpc.RpcError) as raised:
        list(stub.Subscribe(wpb.SubscribeRequest(namespace=namespace, worker_id=99, concurrency=1)))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as invalid:
        list(stub.Subscribe(wpb.SubscribeRequest(namespace=namespace, worker_id=1, concurrency=-1)))
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_jobs_pushed_in_priority_order_one_slot_at_a_time(client: Client, open_stream) -> None:
    worker = client.register_worker()
    client.enqueue_many([{"task": "t", "priority": p} for p in (1, 3, 2, 3)])
    stream = open_stream(worker, concurrency=1)
    order = []
    for _ in range(4):
        (job,) = stream.jobs(1)
        assert stream.quiet(0.05) == []  # nothing more while the only slot is taken
        order.append(job.id)
        finish(client, job)
    assert order == [2, 4, 3, 1]
    info = client.job_info(2)
    assert info is not None and info.worker == worker and info.state == "finished"


def test_job_message_carries_what_a_worker_needs(client: Client, open_stream) -> None:
    worker = client.register_worker()
    stream = open_stream(worker, concurrency=2)
    client.enqueue("p")
    job_id = client.enqueue(
        "t", [1, {"a": [2]}], attempts=3, notes={"n": 1}, priority=4, queue="default"
    )
    jobs = stream.jobs(2)
    job = next(j for j in jobs if j.id == job_id)
    assert (job.task, job.retries, job.queue, job.priority, job.attempts) == (
        "t",
        0,
        "default",
        4,
        3,
    )
    assert list(job.args[1]["a"]) == [2]
    assert dict(job.notes) == {"n": 1}


def test_enqueue_to_push_latency_and_concurrency(client: Client, open_stream) -> None:
    worker = client.register_worker()
    stream = open_stream(worker, concurrency=3)
    start = time.monotonic()
    client.enqueue_many([{"task": "t"} for _ in range(5)])
    jobs = stream.jobs(3)
    assert time.monotonic() - start < 1
    assert stream.quiet(0.1) == []
    assert client.stats().active_jobs == 3
    for job in jobs:
        finish(client, job)
    assert len(stream.jobs(2)) == 2


def test_slot_freed_on_another_broker_refills_the_stream(
    client: Client, open_stream, make_broker, namespace
) -> None:
    other = make_broker()
    worker = client.register_worker()
    stream = open_stream(worker, concurrency=1)
    client.enqueue_many([{"task": "t"}, {"task": "t"}])
    (first,) = stream.jobs(1)
    with Client(other.target, namespace=namespace) as elsewhere:
        assert elsewhere.finish_job(first.id, first.retries)
    (second,) = stream.jobs(1)
    assert second.id != first.id


def test_tasks_queues_and_min_priority_filters(client: Client, open_stream) -> None:
    worker = client.register_worker()
    stream = open_stream(worker, concurrency=10, queues=["q"], tasks=["a"], min_priority=1)
    client.enqueue("a", queue="q", priority=0)
    client.enqueue("b", queue="q", priority=5)
    client.enqueue("a", queue="default", priority=5)
    wanted = client.enqueue("a", queue="q", priority=2)
    (job,) = stream.jobs(1)
    assert job.id == wanted
    assert stream.quiet(0.2) == []


def test_per_task_limits_and_spare_slots(client: Client, open_stream) -> None:
    worker = client.register_worker()
    stream = open_stream(worker, concurrency=2, limits={"slow": 1}, spare=1, spare_min_priority=5)
    client.enqueue_many([{"task": "slow"}, {"task": "slow"}, {"task": "fast"}, {"task": "fast"}])
    jobs = stream.jobs(2)
    assert sorted(j.task for j in jobs) == ["fast", "slow"]
    assert stream.quiet(0.1) == []  # slots full; the spare slot wants priority >= 5
    urgent = client.enqueue("fast", priority=9)
    (spare,) = stream.jobs(1)
    assert spare.id == urgent
    assert stream.quiet(0.1) == []


def test_delayed_job_is_pushed_when_due(client: Client, open_stream) -> None:
    worker = client.register_worker()
    stream = open_stream(worker, concurrency=1)
    client.enqueue("t", delay=0.3)
    assert stream.quiet(0.1) == []
    (job,) = stream.jobs(1, timeout=3)
    info = client.job_info(job.id)
    assert info is not None and info.started is not None and info.delayed is not None
    # Pushed by the dispatcher's timer for the due time, not by the next unrelated wake-up (the
    # next keepalive is 15 s away); the bound leaves room for a loaded machine.
    lateness = (info.started - info.delayed).total_seconds()
    assert 0 <= lateness < 1.0


def test_commands_arrive_live_and_leave_the_inbox(client: Client, open_stream) -> None:
    worker = client.register_worker()
    client.broadcast("early", [1])
    stream = open_stream(worker, concurrency=1)
    first = stream.next()
    assert [list(c) for c in first.commands] == [["early", 1]]  # inbox drained on connect
    assert client.broadcast("jobs", [{"n": [1, None]}], [worker]) is True
    message = stream.next()
    assert [list(c)[0] for c in message.commands] == ["jobs"]
    assert client.receive(worker) == []


def test_keepalives_on_idle_streams(client: Client, make_broker, namespace) -> None:
    fast = make_broker(keepalive_interval=0.1)
    worker = client.register_worker()
    with grpc.insecure_channel(fast.target) as channel:
        reader = StreamReader(
            channel, wpb.SubscribeRequest(namespace=namespace, worker_id=worker, concurrency=1)
        )
        message = reader.next(timeout=2)
        assert not message.jobs and not message.commands and message.time.seconds > 0
        reader.close()


def test_reconnect_redelivers_jobs_the_worker_does_not_run(client: Client, open_stream) -> None:
    worker = client.register_worker()
    stream = open_stream(worker, concurrency=2)
    client.enqueue_many([{"task": "t"}, {"task": "t"}])
    a, b = stream.jobs(2)
    stream.close()
    # The worker got `a` but lost `b` in the broken connection: it reconnects saying so.
    again = open_stream(worker, concurrency=2, running=[a.id])
    (redelivered,) = again.jobs(1)
    assert (redelivered.id, redelivered.retries) == (b.id, b.retries)
    assert again.quiet(0.1) == []
    finish(client, a)
    finish(client, redelivered)


def test_shutdown_ends_streams_unavailable_and_loses_nothing(
    client: Client, make_broker, namespace
) -> None:
    replica = make_broker()
    worker = client.register_worker()
    with grpc.insecure_channel(replica.target) as channel:
        reader = StreamReader(
            channel, wpb.SubscribeRequest(namespace=namespace, worker_id=worker, concurrency=1)
        )
        client.enqueue_many([{"task": "t"} for _ in range(3)])
        (job,) = reader.jobs(1)
        replica.stop(grace=1)
        reader.thread.join(5)
        assert reader.status == grpc.StatusCode.UNAVAILABLE
    stats = client.stats()
    assert (stats.active_jobs, stats.inactive_jobs) == (1, 2)
    assert client.finish_job(job.id, job.retries)


def test_each_job_goes_to_exactly_one_of_many_streams(
    client: Client, open_stream, make_broker, namespace
) -> None:
    replicas = [make_broker(), make_broker()]
    channels = [grpc.insecure_channel(r.target) for r in replicas]
    try:
        streams = []
        for i in range(6):
            worker = client.register_worker()
            streams.append((worker, open_stream(worker, concurrency=5, ch=channels[i % 2])))
        total = 600
        client.enqueue_many([{"task": "t"} for _ in range(total)])
        seen: dict[int, int] = {}
        stubs = [job_service_pb2_grpc.JobServiceStub(ch) for ch in channels]
        deadline = time.monotonic() + 30
        while len(seen) < total and time.monotonic() < deadline:
            for i, (worker, stream) in enumerate(streams):
                try:
                    message = stream.messages.get(timeout=0.01)
                except queue.Empty:
                    continue
                completions = []
                for job in message.jobs:
                    assert job.id not in seen, f"job {job.id} delivered twice"
                    seen[job.id] = worker
                    completions.append(
                        jpb.Completion(id=job.id, retries=job.retries, outcome=jpb.OUTCOME_FINISHED)
                    )
                if completions:
                    stubs[i % 2].CompleteJobs(
                        jpb.CompleteJobsRequest(namespace=namespace, completions=completions)
                    )
        assert len(seen) == total
        assert client.stats().finished_jobs == total
        assert len(set(seen.values())) > 1
    finally:
        for ch in channels:
            ch.close()
