"""/metrics after real jobs: job counters, jobs by state, workers, RPCs, script latencies,
repair and schedule counters, in the Prometheus text format."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobwire import Client, JobwireError

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_after_real_jobs(make_broker: Any, namespace: str) -> None:
    replica = make_broker(http_listen="127.0.0.1:0")
    replica.broker.metrics.stats_ttl = 0  # every scrape reads the stats script
    with Client(replica.target, namespace=namespace) as client:
        client.enqueue("a", queue="q1")
        client.enqueue("a", queue="q1")
        client.enqueue_many([{"task": "b"}, {"task": "b"}, {"task": "b", "delay": 3600}])
        worker = client.register_worker()
        jobs = [client.dequeue(worker, queues=("default", "q1")) for _ in range(4)]
        assert all(jobs)
        one, two, three, four = (j for j in jobs if j is not None)
        assert client.finish_job(one.id, one.retries)
        assert client.fail_job(two.id, two.retries, "boom")
        assert client.complete_jobs([(three.id, three.retries, "finished", None)]) == [True]
        assert not client.finish_job(one.id, one.retries)  # stale: not counted again
        assert client.retry_job(two.id, two.retries)
        with pytest.raises(JobwireError):
            client.enqueue("")

    _, samples = scrape(replica.broker.http_port)
    ns = namespace
    assert value(samples, "jobwire_jobs_enqueued_total", namespace=ns, queue="q1") == 2
    assert value(samples, "jobwire_jobs_enqueued_total", namespace=ns, queue="default") == 3
    assert value(samples, "jobwire_jobs_finished_total", namespace=ns) == 2
    assert value(samples, "jobwire_jobs_failed_total", namespace=ns) == 1
    assert value(samples, "jobwire_jobs_retried_total", namespace=ns) == 1
    # By state, from the stats script: 2 finished, four still active, the retried and the
    # delayed job inactive (the delayed one counted again as delayed).
    assert value(samples, "jobwire_jobs", namespace=ns, state="finished") == 2
    assert value(samples, "jobwire_jobs", namespace=ns, state="active") == 1
    assert value(samples, "jobwire_jobs", namespace=ns, state="inactive") == 2
    assert value(samples, "jobwire_jobs", namespace=ns, state="failed") == 0
    assert value(samples, "jobwire_jobs_delayed", namespace=ns) == 1
    assert value(samples, "jobwire_workers", namespace=ns, state="active") == 1
    assert value(samples, "jobwire_redis_up") == 1
    # RPCs by method and code, with latencies.
    enqueue = "jobwire.v1.JobService/Enqueue"
    assert value(samples, "jobwire_grpc_requests_total", method=enqueue, code="OK") == 2
    assert (
        value(samples, "jobwire_grpc_requests_total", method=enqueue, code="INVALID_ARGUMENT") == 1
    )
    assert value(samples, "jobwire_grpc_request_duration_seconds_count", method=enqueue) == 3
    dequeue = "jobwire.v1.JobService/Dequeue"
    assert value(samples, "jobwire_grpc_requests_total", method=dequeue, code="OK") == 4
    # Script latencies by script name.
    assert value(samples, "jobwire_redis_script_duration_seconds_count", script="enqueue") == 3
    assert value(samples, "jobwire_redis_script_duration_seconds_count", script="dequeue") == 4
    # How long jobs waited (per queue) and ran: four started, three ended (the stale finish and
    # the refused enqueue count nothing).
    waited = "jobwire_job_wait_seconds_count"
    assert value(samples, waited, namespace=ns, queue="q1") == 2
    assert value(samples, waited, namespace=ns, queue="default") == 2
    assert value(samples, "jobwire_job_run_seconds_count", namespace=ns) == 3
    assert 0 < value(samples, "jobwire_job_run_seconds_sum", namespace=ns) < 60


def test_stream_workers_and_streams(make_broker: Any, namespace: str) -> None:
    from jobwire import Worker

    replica = make_broker(http_listen="127.0.0.1:0")
    replica.broker.metrics.stats_ttl = 0
    client = Client(replica.target, namespace=namespace)
    worker = Worker(client, concurrency=2)
    seen: list[int] = []

    @worker.task("ok")
    def ok(job: Any) -> None:
        seen.append(job.id)

    @worker.task("bad")
    def bad(job: Any) -> None:
        raise ValueError("no")

    import threading

    thread = threading.Thread(target=lambda: asyncio.run(worker.run_async()), daemon=True)
    thread.start()
    try:
        assert worker.ready.wait(10)
        ids = [client.enqueue("ok") for _ in range(3)] + [client.enqueue("bad")]
        for job_id in ids:
            client.result(job_id, interval=0.02, timeout=10)
        deadline = time.monotonic() + 10
        while True:
            _, samples = scrape(replica.broker.http_port)
            if value(samples, "jobwire_jobs", namespace=namespace, state="failed") == 1:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert value(samples, "jobwire_streams", namespace=namespace) == 1
        assert value(samples, "jobwire_jobs", namespace=namespace, state="finished") == 3
        assert value(samples, "jobwire_jobs_finished_total", namespace=namespace) == 3
        assert value(samples, "jobwire_jobs_failed_total", namespace=namespace) == 1
        assert value(samples, "jobwire_workers", namespace=namespace, state="inactive") == 1
    finally:
        worker.stop()
        thread.join(15)
        client.close()
    _, samples = scrape(replica.broker.http_port)
    subscribe = "jobwire.v1.WorkerService/Subscribe"
    assert value(samples, "jobwire_streams", namespace=namespace) == 0
    streams = [
        v
        for (name, labels), v in samples.items()
        if name == "jobwire_grpc_requests_total" and ("method", subscribe) in labels
    ]
    assert sum(streams) == 1


def test_repair_and_schedule_counters(make_broker: Any, namespace: str, redis_server: str) -> None:
    import redis

    from broker.keyspace import Keyspace

    replica = make_broker(
        http_listen="127.0.0.1:0", namespace=namespace, repair_interval=3600, dispatch_interval=0.05
    )
    with Client(replica.target, namespace=namespace) as client:
        schedule_id = client.schedule("yearly", "0 0 1 1 *", "tick")
        ks = Keyspace(namespace)
        with redis.Redis.from_url(redis_server) as r:  # make it due now
            r.hset(ks.schedule(schedule_id), "next_run", "1.000000")
            r.zadd(ks.key("schedules_due"), {str(schedule_id): 1})
        # The first repair round covers every namespace the suite left in Redis: wait for ours.
        deadline = time.monotonic() + 30
        while True:
            _, samples = scrape(replica.broker.http_port)
            fired = value(samples, "jobwire_schedules_fired_total", namespace=namespace)
            repairs = value(samples, "jobwire_repairs_total", namespace=namespace)
            if fired and repairs:
                break
            assert time.monotonic() < deadline, f"fired {fired}, repairs {repairs}"
            time.sleep(0.05)
    assert value(samples, "jobwire_schedules_fired_total", namespace=namespace) == 1
    assert value(samples, "jobwire_repairs_total", namespace=namespace) == 1
