"""WorkerService through gRPC: registration, heartbeats, listing, broadcast and receive."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import grpc
import pytest

from jobwire import Client, JobwireError


def test_register_heartbeat_and_list(client: Client) -> None:
    a = client.register_worker(status={"jobs": 4, "queues": ["default"]}, host="box", pid=42)
    b = client.register_worker()
    assert (a, b) == (1, 2)
    page = client.list_workers()
    assert [w.id for w in page] == [2, 1] and page.total == 2
    first = page[1]
    assert (first.host, first.pid, first.status) == ("box", 42, {"jobs": 4, "queues": ["default"]})
    assert page[0].host == socket.gethostname() and page[0].pid == os.getpid()
    assert first.started is not None and first.notified == first.started and first.jobs == []

    time.sleep(0.01)
    assert client.register_worker(a, status={"jobs": 1}, host="elsewhere", pid=7) == a
    (again,) = client.list_workers(ids=[a])
    assert again.host == "box" and again.pid == 42 and again.started == first.started
    assert again.notified is not None and first.notified is not None
    assert again.notified > first.notified and again.status == {"jobs": 1}
    assert client.stats().workers == 2


def test_unregister_and_recreate(client: Client) -> None:
    wid = client.register_worker()
    client.enqueue("t")
    job = client.dequeue(wid)
    assert job is not None
    assert [w.jobs for w in client.list_workers()] == [[job.id]]
    client.unregister_worker(wid)
    client.unregister_worker(wid)  # unknown ids are fine, as in Minion
    assert client.list_workers().total == 0
    info = client.job_info(job.id)
    assert info is not None and info.state == "active"  # left for repair
    assert client.register_worker(wid, host="back") == wid
    assert [(w.id, w.host, w.jobs) for w in client.list_workers()] == [(wid, "back", [job.id])]


def test_list_workers_filters(client: Client) -> None:
    for _ in range(5):
        client.register_worker()
    assert [w.id for w in client.list_workers(1, 2)] == [4, 3]
    page = client.list_workers(before=3)
    assert [w.id for w in page] == [2, 1] and page.total == 2
    assert [w.id for w in client.list_workers(ids=[5, 1, 77])] == [5, 1]
    empty = client.list_workers(10)
    assert list(empty) == [] and empty.total == 0


def test_broadcast_to_chosen_and_all_workers_with_nested_args(client: Client) -> None:
    a, b, c = (client.register_worker() for _ in range(3))
    args: list[Any] = [1, {"deep": [True, None, {"x": "y"}], "n": -2.5}, "s", [], {}]
    assert client.broadcast("jobs", args, ids=[a, c])
    assert client.broadcast("stop")
    assert not client.broadcast("stop", ids=[99])
    assert client.receive(a) == [["jobs", *args], ["stop"]]
    assert client.receive(b) == [["stop"]]
    assert client.receive(c) == [["jobs", *args], ["stop"]]
    assert client.receive(a) == []
    assert client.receive(12345) == []


def test_broadcast_without_workers(client: Client) -> None:
    assert not client.broadcast("jobs", [1])


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.register_worker(0), "id"),
        (lambda c: c.register_worker(host="h" * 300), "host"),
        (lambda c: c.unregister_worker(-1), "id"),
        (lambda c: c.list_workers(offset=-1), "offset"),
        (lambda c: c.list_workers(limit=-1), "limit"),
        (lambda c: c.broadcast(""), "command"),
        (lambda c: c.receive(0), "worker_id"),
    ],
)
def test_bad_input_is_invalid_argument_and_changes_nothing(client: Client, call, field) -> None:
    client.register_worker()
    with pytest.raises(JobwireError) as raised:
        call(client)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v[0] for v in raised.value.field_violations] == [field]
    assert client.stats().workers == 1
    assert client.receive(1) == []
