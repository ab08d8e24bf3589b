"""Leases and bounded messages through the real broker (raw stubs: the contract is under test):
no single fault leaves a job active forever, and no message exceeds what a client accepts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from jobwire import Client
from jobwire.v1 import job_pb2, job_service_pb2_grpc, worker_service_pb2_grpc
from jobwire.v1 import job_service_pb2 as jpb
from jobwire.v1 import worker_service_pb2 as wpb
from tests.broker.test_streams import StreamReader

MIB = 1024 * 1024


def seconds(value: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(value * 1e9))
    return d


def big_args(size: int) -> struct_pb2.ListValue:
    args = struct_pb2.ListValue()
    args.append("x" * size)
    return args


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def state(client: Client, job_id: int) -> tuple[str, int] | None:
    info = client.job_info(job_id)
    return None if info is None else (info.state, info.retries)


@pytest.fixture
def stubs(broker: Any) -> Any:
    with grpc.insecure_channel(broker.target) as ch:
        yield job_service_pb2_grpc.JobServiceStub(ch), worker_service_pb2_grpc.WorkerServiceStub(ch)


def register(
    workers: Any, namespace: str, worker: int | None = None, **fields: Any
) -> wpb.RegisterWorkerResponse:
    request = wpb.RegisterWorkerRequest(namespace=namespace, host="h", pid=1, **fields)
    if worker is not None:
        request.id = worker
    response: wpb.RegisterWorkerResponse = workers.RegisterWorker(request)
    return response


def test_a_stale_lease_cannot_complete_a_newer_attempt(client: Client, stubs, namespace) -> None:
    jobs, workers = stubs
    worker = register(workers, namespace).id
    job_id = client.enqueue("t")
    take = jpb.DequeueRequest(namespace=namespace, worker_id=worker)
    (first,) = jobs.Dequeue(take).jobs
    assert first.lease > 0
    # The attempt goes back unchanged (an admin retry keeps nothing; a hand-back keeps retries).
    assert client.retry_job(job_id, first.retries)
    (second,) = jobs.Dequeue(take).jobs
    stale = jpb.FinishJobRequest(
        namespace=namespace, id=job_id, retries=second.retries, lease=first.lease
    )
    assert not jobs.FinishJob(stale).finished
    fresh = jpb.FinishJobRequest(
        namespace=namespace, id=job_id, retries=second.retries, lease=second.lease
    )
    assert jobs.FinishJob(fresh).finished


def test_a_heartbeat_hands_back_jobs_whose_dequeue_reply_was_lost(
    client: Client, make_broker, namespace
) -> None:
    """A Dequeue ran but its answer never reached the worker. The worker's next heartbeat lists
    what it runs; the rest is back to inactive within the grace, for any worker to take."""
    replica = make_broker(lease_grace=0.2)
    with grpc.insecure_channel(replica.target) as ch:
        jobs = job_service_pb2_grpc.JobServiceStub(ch)
        workers = worker_service_pb2_grpc.WorkerServiceStub(ch)
        worker = register(workers, namespace).id
        job_id = client.enqueue("t")
        jobs.Dequeue(jpb.DequeueRequest(namespace=namespace, worker_id=worker))  # "lost"
        assert state(client, job_id) == ("active", 0)
        time.sleep(0.25)
        response = register(workers, namespace, worker, running=job_pb2.JobIds(ids=[]))
        assert not response.created and list(response.lost) == []
        assert state(client, job_id) == ("inactive", 0)


def test_expired_leases_fail_the_job_and_retry_it(client: Client, make_broker, namespace) -> None:
    make_broker(lease_check_interval=0.1)  # reclaims in every namespace, this one included
    worker = client.register_worker()
    with grpc.insecure_channel(client.target) as ch:
        workers = worker_service_pb2_grpc.WorkerServiceStub(ch)
        register(workers, namespace, worker, lease_duration=seconds(1))
    job_id = client.enqueue("t", attempts=2)
    job = client.dequeue(worker)
    assert job is not None and job.id == job_id
    started = time.monotonic()
    info = wait_for(lambda: (i := client.job_info(job_id)) and i.retries == 1 and i)
    assert info and info.state == "inactive" and info.result == "Worker went away"
    assert time.monotonic() - started < 5


def test_a_worker_removed_by_repair_and_recreated_is_served_again(
    client: Client, make_broker, namespace
) -> None:
    """Repair deletes a worker that missed heartbeats for stream_missing_after (a paused process,
    a Redis outage) although its stream is open; its next heartbeat re-creates it. That stream
    is ended, so the worker subscribes again and is served: it never idles with an open stream."""
    replica = make_broker()
    with grpc.insecure_channel(replica.target) as ch:
        workers = worker_service_pb2_grpc.WorkerServiceStub(ch)
        worker = register(workers, namespace).id
        request = wpb.SubscribeRequest(namespace=namespace, worker_id=worker, concurrency=2)
        reader = StreamReader(ch, request)
        first = client.enqueue("t")
        (job,) = reader.jobs(1)
        assert job.id == first
        client.unregister_worker(worker)  # what repair does to the registry
        response = register(workers, namespace, worker, running=job_pb2.JobIds(ids=[first]))
        assert response.created and list(response.lost) == []
        reader.thread.join(5)
        assert reader.status == grpc.StatusCode.UNAVAILABLE  # ended: subscribe again
        request.running.append(first)
        again = StreamReader(ch, request)
        second = client.enqueue("t")
        (job,) = again.jobs(1)
        assert job.id == second
        again.close()


def test_stream_messages_stay_under_the_message_limit(
    client: Client, make_broker, namespace
) -> None:
    """Two jobs of 2.5 MB each would make one 5 MB message, over a default client's 4 MiB."""
    replica = make_broker()
    ids = client.enqueue_many([{"task": "t", "args": ["x" * (5 * MIB // 2)]}] * 2)
    worker = client.register_worker()
    with grpc.insecure_channel(replica.target) as ch:  # default 4 MiB receive limit
        request = wpb.SubscribeRequest(namespace=namespace, worker_id=worker, concurrency=2)
        reader = StreamReader(ch, request)
        got = reader.jobs(2, timeout=10)
        assert sorted(j.id for j in got) == ids
        reader.close()
    assert reader.status in (None, grpc.StatusCode.CANCELLED)


def test_dequeue_answers_stay_under_the_message_limit(client: Client, namespace) -> None:
    ids = client.enqueue_many([{"task": "t", "args": ["x" * (5 * MIB // 2)]}] * 2)
    worker = client.register_worker()
    with grpc.insecure_channel(client.target) as ch:  # default 4 MiB receive limit
        jobs = job_service_pb2_grpc.JobServiceStub(ch)
        take = jpb.DequeueRequest(namespace=namespace, worker_id=worker, count=2)
        (first,) = jobs.Dequeue(take).jobs
        assert first.id == ids[0]
        assert state(client, ids[1]) == ("inactive", 0)  # handed back, not stranded
        (second,) = jobs.Dequeue(take).jobs
        assert second.id == ids[1]


def test_a_job_too_large_to_deliver_is_refused_at_enqueue(client: Client, channel, namespace):
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    request = jpb.EnqueueRequest(namespace=namespace, task="t", args=big_args(4 * MIB - 1000))
    with pytest.raises(grpc.RpcError) as raised:
        jobs.Enqueue(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "args" in (raised.value.details() or "")
    assert client.stats().enqueued_jobs == 0


def test_a_lease_duration_out_of_range_is_invalid(stubs, namespace) -> None:
    _, workers = stubs
    for value in (0.5, 86401):
        with pytest.raises(grpc.RpcError) as raised:
            register(workers, namespace, lease_duration=seconds(value))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "lease_duration" in (raised.value.details() or "")


def test_list_pages_stay_under_the_message_limit(client: Client, channel, namespace) -> None:
    ids = client.enqueue_many([{"task": "t", "args": ["x" * (3 * MIB // 2)]}] * 3)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)  # default 4 MiB receive limit
    first = jobs.ListJobs(jpb.ListJobsRequest(namespace=namespace, limit=10))
    assert [j.id for j in first.jobs] == [ids[2], ids[1]] and first.total == 3
    rest = jobs.ListJobs(jpb.ListJobsRequest(namespace=namespace, limit=10, offset=2))
    assert [j.id for j in rest.jobs] == [ids[0]]
