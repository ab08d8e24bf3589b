"""The job lifecycle end to end: jobwire.Client, a real broker and Redis (Minion semantics)."""

from __future__ import annotations

import threading
import time
from typing import Any

import grpc
import pytest

from jobwire import Client, JobwireError


def register(client: Client) -> int:
    return client.register_worker()


def test_enqueue_defaults_and_info(client: Client) -> None:
    job_id = client.enqueue("add", [1, 2])
    info = client.job_info(job_id)
    assert info is not None
    assert (info.id, info.task, info.args, info.state) == (job_id, "add", [1, 2], "inactive")
    assert (info.attempts, info.priority, info.queue, info.lax) == (1, 0, "default", False)
    assert (info.notes, info.parents, info.children, info.retries) == ({}, [], [], 0)
    assert info.result is None and info.finished is None and info.started is None
    assert info.retried is None and info.expires is None and info.worker is None
    assert info.created is not None and info.delayed == info.created
    assert info.created.tzinfo is not None
    assert client.job_info(job_id + 100) is None


def test_ids_are_monotonic_and_restart_after_reset_all(client: Client) -> None:
    assert [client.enqueue("t") for _ in range(3)] == [1, 2, 3]
    client.reset(all=True)
    assert client.enqueue("t") == 1
    assert client.stats().enqueued_jobs == 1


def test_enqueue_options(client: Client) -> None:
    job_id = client.enqueue(
        "t",
        [{"nested": [1, "x", None]}],
        attempts=3,
        delay=100,
        expire=300,
        lax=True,
        notes={"tag": "a", "n": 1.5},
        parents=[998, 999],
        priority=7,
        queue="fast",
    )
    info = client.job_info(job_id)
    assert info is not None
    assert info.args == [{"nested": [1, "x", None]}]
    assert (info.attempts, info.lax, info.priority, info.queue) == (3, True, 7, "fast")
    assert info.notes == {"tag": "a", "n": 1.5}
    assert info.parents == [998, 999]
    assert info.created is not None and info.delayed is not None and info.expires is not None
    assert abs((info.delayed - info.created).total_seconds() - 100) < 0.01
    assert abs((info.expires - info.created).total_seconds() - 300) < 0.01
    assert client.stats().delayed_jobs == 1


def test_batch_enqueue_is_ordered(client: Client) -> None:
    ids = client.enqueue_many(
        [{"task": "a", "args": [i], "priority": i % 3} for i in range(50)] + [{"task": "b"}]
    )
    assert ids == list(range(1, 52))
    assert client.job_info(51).task == "b"  # type: ignore[union-attr]
    assert client.list_jobs(limit=0).total == 0  # Minion's quirk: empty page, total 0
    assert client.list_jobs(limit=1).total == 51


def test_dequeue_order_priority_then_id(client: Client) -> None:
    worker = register(client)
    for priority in (0, 5, 0, 5, -1, 10):
        client.enqueue("t", priority=priority)
    order = []
    while (job := client.dequeue(worker)) is not None:
        order.append(job.id)
    assert order == [6, 2, 4, 1, 3, 5]


def test_dequeue_returns_what_a_worker_needs(client: Client) -> None:
    worker = register(client)
    job_id = client.enqueue("t", [1, {"a": 2}])
    job = client.dequeue(worker)
    assert job is not None
    assert (job.id, job.task, job.args, job.retries) == (job_id, "t", [1, {"a": 2}], 0)
    info = client.job_info(job_id)
    assert info is not None and info.state == "active" and info.worker == worker
    assert info.started is not None
    assert client.dequeue(worker) is None


def test_dequeue_filters(client: Client) -> None:
    worker = register(client)
    a = client.enqueue("a", queue="q1", priority=1)
    b = client.enqueue("b", queue="q2", priority=2)
    c = client.enqueue("c", queue="q2", priority=3)
    assert client.dequeue(worker) is None  # default queue only
    assert client.dequeue(worker, queues=["q1", "q2"], tasks=["a", "b"]).id == b  # type: ignore[union-attr]
    assert client.dequeue(worker, queues=["q1", "q2"], min_priority=2) is not None  # c
    assert client.dequeue(worker, queues=["q1"], min_priority=2) is None
    assert client.dequeue(worker, queues=["q1"], tasks=[]) is None  # empty tasks match nothing
    assert client.dequeue(worker, queues=["q1"], tasks=["a"]).id == a  # type: ignore[union-attr]
    assert c == 3


def test_dequeue_by_id(client: Client) -> None:
    worker = register(client)
    first = client.enqueue("t", priority=10)
    second = client.enqueue("t")
    delayed = client.enqueue("t", delay=100)
    assert client.dequeue(worker, id=delayed) is None
    assert client.dequeue(worker, id=second, queues=["other"]) is None
    assert client.dequeue(worker, id=second, min_priority=1) is None
    assert client.dequeue(worker, id=second).id == second  # type: ignore[union-attr]
    assert client.dequeue(worker, id=second) is None  # already active
    assert client.dequeue(worker).id == first  # type: ignore[union-attr]


def test_delayed_job_becomes_ready_and_wait_wakes_for_it(client: Client) -> None:
    worker = register(client)
    job_id = client.enqueue("t", delay=0.3)
    assert client.dequeue(worker) is None
    start = time.monotonic()
    job = client.dequeue(worker, wait=5)
    elapsed = time.monotonic() - start
    assert job is not None and job.id == job_id
    assert elapsed < 2  # woken by the due time, not by the end of the wait


def test_dequeue_wait_is_woken_by_enqueue(client: Client, broker) -> None:
    worker = register(client)
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(client.dequeue(worker, wait=10)))
    start = time.monotonic()
    waiter.start()
    time.sleep(0.2)
    with Client(broker.target, namespace=client.namespace) as other:
        job_id = other.enqueue("t")
    waiter.join(10)
    assert time.monotonic() - start < 3
    assert got and getattr(got[0], "id", None) == job_id


def test_dequeue_wait_times_out_empty(client: Client) -> None:
    worker = register(client)
    start = time.monotonic()
    assert client.dequeue(worker, wait=0.3) is None
    assert 0.25 < time.monotonic() - start < 3


def test_expired_jobs_are_never_dequeued_and_hidden(client: Client) -> None:
    worker = register(client)
    job_id = client.enqueue("t", expire=0.1)
    keep = client.enqueue("t")
    time.sleep(0.2)
    assert client.job_info(job_id) is None
    assert [j.id for j in client.list_jobs().items] == [keep]
    assert client.list_jobs().total == 1
    assert client.stats().inactive_jobs == 1
    assert client.dequeue(worker).id == keep  # type: ignore[union-attr]
    assert client.dequeue(worker) is None


def test_finish_and_fail_are_guarded(client: Client) -> None:
    worker = register(client)
    job_id = client.enqueue("t")
    assert client.finish_job(job_id, 0, "early") is False  # not active
    job = client.dequeue(worker)
    assert job is not None
    assert client.finish_job(job_id, 1, "stale") is False  # retries mismatch
    assert client.finish_job(job_id, 0, {"sum": 3}) is True
    assert client.finish_job(job_id, 0, "again") is False
    assert client.fail_job(job_id, 0, "late") is False
    info = client.job_info(job_id)
    assert info is not None and info.state == "finished" and info.result == {"sum": 3}
    assert info.finished is not None
    assert client.finish_job(12345, 0) is False


def test_fail_without_attempts_stays_failed(client: Client) -> None:
    worker = register(client)
    job_id = client.enqueue("t")
    client.dequeue(worker)
    assert client.fail_job(job_id, 0, "boom") is True
    info = client.job_info(job_id)
    assert info is not None and (info.state, info.result, info.retries) == ("failed", "boom", 0)
    assert client.history().daily[-1].failed_jobs == 1


def test_automatic_retry_with_backoff(client: Client) -> None:
    worker = register(client)
    job_id = client.enqueue("t", attempts=3)
    client.dequeue(worker)
    assert client.fail_job(job_id, 0, "first") is True
    info = client.job_info(job_id)
    assert info is not None
    assert (info.state, info.attempts, info.retries, info.result) == ("inactive", 2, 1, "first")
    assert info.retried is not None and info.delayed is not None
    assert abs((info.delayed - info.retried).total_seconds() - 15) < 0.01  # 0**4 + 15
    assert client.dequeue(worker) is None  # delayed
    # A later automatic retry waits retries**4 + 15: retry now by hand, then fail again.
    assert client.retry_job(job_id, 1) is True  # manual retries keep attempts
    job = client.dequeue(worker)
    assert job is not None and job.retries == 2
    assert client.fail_job(job_id, 2, "second") is True
    info = client.job_info(job_id)
    assert info is not None and (info.attempts, info.retries) == (1, 3)
    assert abs((info.delayed - info.retried).total_seconds() - 31) < 0.01  # type: ignore[operator]


def test_retry_job_from_every_state_and_options(client: Client) -> None:
    worker = register(client)
    job_id = client.enqueue("t", notes={"keep": 1})
    assert client.retry_job(job_id, 5) is False  # stale
    assert client.retry_job(job_id, 0, priority=4, queue="q2", attempts=5, lax=True) is True
    info = client.job_info(job_id)
    assert info is not None
    assert (info.priority, info.queue, info.attempts, info.lax, info.retries) == (
        4,
        "q2",
        5,
        True,
        1,
    )
    job = client.dequeue(worker, queues=["q2"])
    assert job is not None
    assert client.retry_job(job_id, 1, delay=50, expire=100, parents=[77]) is True  # active
    info = client.job_info(job_id)
    assert info is not None and info.state == "inactive" and info.parents == [77]
    assert info.notes == {"keep": 1} and info.started is not None and info.worker == worker
    assert info.expires is not None and info.delayed is not None
    assert client.stats().active_workers == 0  # the slot was freed
    assert client.finish_job(job_id, 1) is False  # the old handle is stale


def test_remove_job(client: Client) -> None:
    worker = register(client)
    job_id = client.enqueue("t")
    client.dequeue(worker)
    assert client.remove_job(job_id) is False  # active
    client.finish_job(job_id, 0)
    assert client.remove_job(job_id) is True
    assert client.remove_job(job_id) is False
    assert client.job_info(job_id) is None
    assert client.list_jobs().total == 0


def test_note_merges_and_null_removes(client: Client) -> None:
    job_id = client.enqueue("t", notes={"a": 1, "b": {"x": 1}})
    assert client.note(job_id, {"b": None, "c": [1, {"d": None}], "e": {}}) is True
    info = client.job_info(job_id)
    assert info is not None and info.notes == {"a": 1, "c": [1, {}], "e": {}}
    assert client.note(999, {"a": 1}) is False
    assert [j.id for j in client.list_jobs(notes=["c"]).items] == [job_id]
    assert client.list_jobs(notes=["b"]).total == 0


def test_dependencies(client: Client) -> None:
    worker = register(client)
    parent = client.enqueue("parent")
    lax_child = client.enqueue("child", parents=[parent], lax=True)
    strict_child = client.enqueue("child", parents=[parent, 424242])
    assert client.job_info(parent).children == [lax_child, strict_child]  # type: ignore[union-attr]
    job = client.dequeue(worker)
    assert job is not None and job.id == parent
    assert client.dequeue(worker) is None  # active parent blocks
    client.fail_job(parent, 0, "no")
    got = client.dequeue(worker)
    assert got is not None and got.id == lax_child  # failed parent blocks only strict children
    assert client.dequeue(worker) is None
    assert client.retry_job(parent, 0) is True
    job = client.dequeue(worker, id=parent)
    assert job is not None
    client.finish_job(parent, 1)
    got = client.dequeue(worker)
    assert got is not None and got.id == strict_child  # missing parents never block


def test_removed_and_expired_parents_do_not_block(client: Client) -> None:
    worker = register(client)
    gone = client.enqueue("p")
    expiring = client.enqueue("p", expire=0.2, queue="elsewhere")
    child = client.enqueue("c", parents=[gone, expiring])
    assert client.dequeue(worker) is not None  # the parent `gone`... is dequeued first
    assert client.dequeue(worker) is None
    client.retry_job(gone, 0)
    assert client.remove_job(gone) is True
    assert client.dequeue(worker) is None  # `expiring` still blocks
    time.sleep(0.3)
    got = client.dequeue(worker)
    assert got is not None and got.id == child


def test_list_jobs_filters(client: Client) -> None:
    worker = register(client)
    ids = [
        client.enqueue("a", queue="q1", notes={"x": 1}),
        client.enqueue("b", queue="q1"),
        client.enqueue("a", queue="q2", notes={"y": 1}),
        client.enqueue("b", queue="q2", notes={"x": 1, "y": 2}),
    ]
    job = client.dequeue(worker, queues=["q2"], tasks=["b"])
    assert job is not None
    client.finish_job(job.id, 0)

    def listed(**kw: object) -> tuple[list[int], int]:
        page = client.list_jobs(**kw)  # type: ignore[arg-type]
        return [j.id for j in page.items], page.total

    assert listed() == (ids[::-1], 4)
    assert listed(states=["finished"]) == ([4], 1)
    assert listed(states=["inactive", "finished"]) == ([4, 3, 2, 1], 4)
    assert listed(queues=["q1"]) == ([2, 1], 2)
    assert listed(tasks=["a"]) == ([3, 1], 2)
    assert listed(notes=["x", "y"]) == ([4, 3, 1], 3)
    assert listed(tasks=["b"], queues=["q2"]) == ([4], 1)
    assert listed(ids=[1, 3, 99]) == ([3, 1], 2)
    assert listed(before=3) == ([2, 1], 2)
    assert listed(offset=1, limit=2) == ([3, 2], 4)
    assert listed(offset=10) == ([], 0)
    info = client.list_jobs(ids=[4]).items[0]
    assert info.state == "finished" and info.time is not None


def test_stats_and_history(client: Client) -> None:
    worker = register(client)
    for _ in range(3):
        client.enqueue("t")
    client.enqueue("t", delay=100)
    a = client.dequeue(worker)
    b = client.dequeue(worker)
    assert a is not None and b is not None
    client.finish_job(a.id, 0)
    stats = client.stats()
    assert (stats.inactive_jobs, stats.active_jobs, stats.finished_jobs) == (2, 1, 1)
    assert (stats.delayed_jobs, stats.failed_jobs, stats.enqueued_jobs) == (1, 0, 4)
    assert (stats.workers, stats.active_workers, stats.inactive_workers) == (1, 1, 0)
    assert stats.uptime >= 0
    history = client.history()
    assert len(history.daily) == 24
    assert history.daily[-1].finished_jobs == 1
    epochs = [h.epoch for h in history.daily]
    assert all(epoch is not None for epoch in epochs)
    assert epochs == sorted(epochs)  # type: ignore[type-var]  # None ruled out just above


def test_reset_locks_keeps_jobs(client: Client) -> None:
    client.enqueue("t")
    client.lock("l", 100)
    client.reset(locks=True)
    assert client.list_locks().total == 0
    assert client.list_jobs().total == 1
    client.reset()  # neither: no-op
    assert client.list_jobs().total == 1


def test_complete_jobs_batch(client: Client) -> None:
    worker = register(client)
    client.enqueue_many([{"task": "t"} for _ in range(3)] + [{"task": "t", "attempts": 2}])
    jobs = client.dequeue_many(worker, 10)
    assert [j.id for j in jobs] == [1, 2, 3, 4]
    applied = client.complete_jobs(
        [
            (1, 0, "finished", 1),
            (2, 0, "failed", "x"),
            (3, 9, "finished", None),
            (4, 0, "failed", "y"),
        ]
    )
    assert applied == [True, True, False, True]
    states = {j.id: j.state for j in client.list_jobs().items}
    assert states == {1: "finished", 2: "failed", 3: "active", 4: "inactive"}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.enqueue(""), "task"),
        (lambda c: c.enqueue("t", attempts=0), "attempts"),
        (lambda c: c.enqueue("t", delay=-1), "delay"),
        (lambda c: c.enqueue("t", expire=-5), "expire"),
        (lambda c: c.enqueue("t", queue="x" * 300), "queue"),
        (lambda c: c.enqueue("t", ["x" * (5 * 1024 * 1024)]), "args"),
        (lambda c: c.enqueue_many([{"task": "ok"}, {"task": ""}]), "requests[1].task"),
        (lambda c: c.list_jobs(limit=-1), "limit"),
        (lambda c: c.list_jobs(offset=-1), "offset"),
        (lambda c: c.dequeue(0), "worker_id"),
        (lambda c: c.retry_job(1, 0, attempts=0), "attempts"),
        (lambda c: c.retry_job(1, 0, queue=""), "queue"),
    ],
)
def test_bad_input_is_invalid_argument_and_changes_nothing(client: Client, call, field) -> None:
    with pytest.raises(JobwireError) as raised:
        call(client)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v[0] for v in raised.value.field_violations] == [field]
    assert client.stats().enqueued_jobs == 0


def test_unknown_state_and_bad_namespace(client: Client, broker) -> None:
    with pytest.raises(JobwireError) as unknown:
        client.list_jobs(states=["done"])
    assert unknown.value.field_violations[0][0].startswith("states")
    with Client(broker.target, namespace="bad{ns}") as bad, pytest.raises(JobwireError) as raised:
        bad.enqueue("t")
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.field_violations[0][0] == "namespace"


def test_wire_level_bad_input(channel, namespace: str) -> None:
    """Fields the SDK never sends malformed, sent raw: still INVALID_ARGUMENT naming the field."""
    from google.protobuf import duration_pb2
    from grpc_status import rpc_status

    from jobwire.v1 import job_pb2, job_service_pb2_grpc
    from jobwire.v1 import job_service_pb2 as pb

    stub = job_service_pb2_grpc.JobServiceStub(channel)
    cases = [
        (
            stub.Dequeue,
            pb.DequeueRequest(
                namespace=namespace, worker_id=1, wait=duration_pb2.Duration(seconds=-1)
            ),
            "wait",
        ),
        (stub.Dequeue, pb.DequeueRequest(namespace=namespace, worker_id=1, count=-1), "count"),
        (
            stub.Dequeue,
            pb.DequeueRequest(namespace=namespace, worker_id=1, queues=[""]),
            "queues[0]",
        ),
        (
            stub.ListJobs,
            pb.ListJobsRequest(namespace=namespace, states=[job_pb2.STATE_UNSPECIFIED]),
            "states[0]",
        ),
        (
            stub.CompleteJobs,
            pb.CompleteJobsRequest(namespace=namespace, completions=[pb.Completion(id=1)]),
            "completions[0].outcome",
        ),
        (
            stub.BatchEnqueue,
            pb.BatchEnqueueRequest(
                namespace=namespace, requests=[pb.EnqueueRequest(task="t", namespace="other")]
            ),
            "requests[0].namespace",
        ),
    ]
    for method, request, field in cases:
        with pytest.raises(grpc.RpcError) as raised:
            method(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(raised.value)
        assert status is not None and field in status.message


def test_jobs_taken_for_a_dequeue_whose_caller_left_go_back(broker: Any, client: Client) -> None:
    """The caller's deadline passes (or it hangs up) after the script took a job but before the
    answer went out: the job goes back to inactive unchanged instead of staying active unseen."""
    import asyncio
    import dataclasses

    from broker.services.jobs import JobServicer
    from jobwire.v1 import job_service_pb2 as pb

    worker = register(client)
    job_id = client.enqueue("t")
    ctx = broker.broker.ctx
    real_dequeue = ctx.store.dequeue
    taken = threading.Event()

    class SlowStore:
        """The real store, with a pause between Redis running the script and the reply."""

        def __getattr__(self, name: str) -> Any:
            return getattr(ctx.store, name)

        async def dequeue(self, *args: Any, **kwargs: Any) -> Any:
            result = await real_dequeue(*args, **kwargs)
            taken.set()
            await asyncio.sleep(1)
            return result

    servicer = JobServicer(dataclasses.replace(ctx, store=SlowStore()))
    request = pb.DequeueRequest(namespace=client.namespace, worker_id=worker)

    async def dequeue() -> Any:
        return await servicer.Dequeue(request, None)  # no grpc context: never used here

    future = asyncio.run_coroutine_threadsafe(dequeue(), broker.loop)
    assert taken.wait(10)
    assert client.job_info(job_id).state == "active"  # type: ignore[union-attr]
    future.cancel()
    deadline = time.monotonic() + 10
    while client.job_info(job_id).state != "inactive":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    info = client.job_info(job_id)
    assert info is not None and info.retries == 0  # unchanged: no handle went stale
    assert client.dequeue(worker).id == job_id  # type: ignore[union-attr]


def test_expired_jobs_are_hidden_from_every_kind_of_list(client: Client) -> None:
    worker = register(client)
    client.enqueue_many([{"task": "t", "queue": "q", "expire": 0.1} for _ in range(5)])
    live = [client.enqueue("t", queue="q"), client.enqueue("u")]
    job = client.dequeue(worker, id=live[0], queues=["q"])
    assert job is not None
    client.finish_job(job.id, 0)
    time.sleep(0.2)

    def listed(**kw: Any) -> tuple[list[int], int]:
        page = client.list_jobs(**kw)
        return [j.id for j in page.items], page.total

    assert listed() == ([7, 6], 2)
    assert listed(limit=1, offset=1) == ([6], 2)
    assert listed(states=["inactive"]) == ([7], 1)
    assert listed(states=["finished"]) == ([6], 1)
    assert listed(queues=["q"]) == ([6], 1)
    assert listed(tasks=["t"]) == ([6], 1)
    assert listed(before=7) == ([6], 1)
    assert listed(states=["inactive"], before=7) == ([], 0)
    assert client.stats().inactive_jobs == 1


def test_list_jobs_notes_with_too_broad_filters_is_resource_exhausted(client: Client) -> None:
    """Notes combined with filters that both match more than a script may examine: refused,
    with a reason saying what to do; each filter alone, or a narrow other side, is answered."""
    for _ in range(11):
        client.enqueue_many([{"task": "t", "notes": {"k": 1}}] * 1000)
    assert client.list_jobs(notes=["k"], limit=1).total == 11_000
    with pytest.raises(JobwireError) as raised:
        client.list_jobs(notes=["k"], queues=["default"])
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "combine notes with narrower filters" in raised.value.reason
    job = client.enqueue("rare", notes={"k": 2})
    page = client.list_jobs(notes=["k"], tasks=["rare"], queues=["default"])
    assert ([j.id for j in page.items], page.total) == ([job], 1)
