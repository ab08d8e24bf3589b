"""The broker process as an operator runs it: one broker per port, one per data directory, and
an embedded Redis that neither outlives a killed broker nor blocks its restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from broker.embedded_redis import EmbeddedRedis, find_redis_server
from jobwire import Client
from tests.faults.harness import Processes, process_gone, serving, wait_for


@pytest.mark.timeout(60)
def test_a_second_broker_on_a_port_in_use_exits_with_one_line(procs: Processes) -> None:
    redis = procs.redis(aof=False)
    first = procs.broker("first", redis.url)
    second = procs.broker("second", redis.url, first.port, wait=False)
    assert second.proc.popen.wait(20) != 0
    lines = second.proc.log.read_text().splitlines()
    print(f"\n[faults] second broker on a used port said: {lines}")
    assert len(lines) == 1 and first.target in lines[0] and "in use" in lines[0]
    assert serving(first.target)
    with Client(first.target) as client:
        assert client.enqueue("t") > 0


@pytest.mark.timeout(60)
def test_a_second_broker_on_a_data_dir_in_use_exits_with_one_line(
    procs: Processes, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = procs.broker("first", None, data_dir=data)
    second = procs.broker("second", None, data_dir=data, wait=False)
    assert second.proc.popen.wait(20) != 0
    lines = second.proc.log.read_text().splitlines()
    print(f"\n[faults] second broker on a used data dir said: {lines}")
    assert len(lines) == 1 and str(data) in lines[0] and f"pid {first.proc.pid}" in lines[0]
    assert serving(first.target)


@pytest.mark.timeout(90)
def test_kill9_of_a_broker_takes_its_redis_along_and_a_restart_keeps_the_jobs(
    procs: Processes, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    broker = procs.broker("embedded", None, data_dir=data)
    with Client(broker.target) as client:
        ids = client.enqueue_many([{"task": "t", "args": [i]} for i in range(50)])
    redis_pid = int((data / "redis.pid").read_text())
    broker.proc.kill9()
    gone = wait_for(lambda: process_gone(redis_pid), 15, "the embedded redis-server gone")
    restart = time.monotonic()
    again = procs.broker("embedded", None, broker.port, data_dir=data)
    serving_after = time.monotonic() - restart
    with Client(again.target) as client:
        kept = [info.args for info in client.list_jobs(ids=ids, limit=100)]
    print(
        f"\n[faults] broker kill -9 with embedded redis: redis gone after {gone:.2f}s, "
        f"restart serving after {serving_after:.1f}s, jobs kept {len(kept)}/{len(ids)}"
    )
    assert sorted(kept) == [[i] for i in range(50)]


@pytest.mark.timeout(90)
def test_a_restart_stops_the_redis_an_earlier_broker_left_running(
    procs: Processes, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    broker = procs.broker("embedded", None, data_dir=data)
    with Client(broker.target) as client:
        job = client.enqueue("kept")
    assert broker.proc.terminate() == 0
    # A redis-server exactly as a broker runs it, but whose broker is gone (as after a kill -9
    # where the kernel could not deliver the parent-death signal).
    stale = procs.spawn("stale-redis", EmbeddedRedis(data).command(find_redis_server()))
    wait_for(lambda: (data / "redis.pid").exists(), 15, "the stale redis-server up")
    restart = time.monotonic()
    again = procs.broker("embedded", None, broker.port, data_dir=data)
    serving_after = time.monotonic() - restart
    assert stale.popen.wait(10) == 0  # stopped with SIGTERM: a clean shutdown
    with Client(again.target) as client:
        info = client.job_info(job)
    print(f"\n[faults] restart over a stale embedded redis: serving after {serving_after:.1f}s")
    assert info is not None and info.task == "kept"
