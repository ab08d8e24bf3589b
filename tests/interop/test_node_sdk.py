"""The Node SDK (sdk/node) against the real broker, with Python on the other side."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(predicate: Callable[[], Any], timeout: float = 15, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_node_client_enqueues_python_worker_runs_node_reads_results(
    broker: Any, namespace: str, run_node: Any, python_worker: Any
) -> None:
    with python_worker() as worker:
        out = run_node("enqueue-and-wait", broker.target, namespace, "3")
    assert sorted(worker.done) == sorted(out["ids"])
    assert [job["result"] for job in out["jobs"]] == [0, 2, 4]
    for job, i in zip(out["jobs"], range(3), strict=True):
        assert job["state"] == "finished"
        assert job["args"] == [i, i]
        assert job["notes"] == {"from": "node"}
        assert job["worker"] == worker.worker_id
        assert job["finishedIsDate"] and job["createdBeforeFinished"]
    assert out["listedFinished"] == 3
    assert out["missing"] is None
    assert out["stats"]["finishedJobs"] == 3
    assert out["stats"]["enqueuedJobs"] == 3


def test_node_worker_runs_stream_jobs_enqueued_from_python(
    broker: Any, namespace: str, client: Any, start_node: Any
) -> None:
    ok = client.enqueue("add", [2, 3])
    bad = client.enqueue("boom", [], attempts=2)

    proc = start_node("worker", broker.target, namespace)
    info = wait_for(
        lambda: (i := client.job_info(bad)) and i.retries == 1 and i,
        what="the failed job's automatic retry",
    )
    done = wait_for(lambda: (i := client.job_info(ok)) and i.state == "finished" and i)
    # Registered, heartbeating and holding no job once both are reported.
    (worker,) = client.list_workers()
    assert worker.status["jobs"] == 2
    assert done.result == 5
    assert done.worker == worker.id
    # attempts=2: the failure consumed one attempt and retried the job automatically.
    assert info.state == "inactive"
    assert info.attempts == 1
    assert info.result == f"boom {bad}"
    assert info.worker == worker.id

    proc.send_signal(signal.SIGTERM)  # graceful stop: unregisters
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert '"stopped":true' in out
    assert list(client.list_workers()) == []


def test_node_gets_invalid_argument_with_field(broker: Any, namespace: str, run_node: Any) -> None:
    out = run_node("bad-enqueue", broker.target, namespace)
    assert out["isJobwireError"] is True
    assert out["code"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in out["fieldViolations"]] == ["task"]


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float = 15.0) -> list[str]:
    """Lines of the process' stderr up to the first one containing `text`."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if text in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), f"no {text!r} from node in {timeout} s: {''.join(lines)}"
    return lines


def test_node_worker_runs_again_a_job_retried_while_it_runs(
    broker: Any, namespace: str, client: Any, start_node: Any
) -> None:
    proc = start_node("sleeper", broker.target, namespace, "2")
    worker_id = int(_read_until(proc, "running")[-1].split()[1])
    job_id = client.enqueue("sleep", [1500])
    _read_until(proc, f"started {job_id} 0")
    assert client.retry_job(job_id, 0)  # while it runs: handed out again, to the same worker
    _read_until(proc, f"started {job_id} 1")
    info = wait_for(lambda: (i := client.job_info(job_id)) and i.state == "finished" and i)
    # The first attempt's outcome was refused; the second finished the job.
    assert (info.result, info.retries, info.worker) == ("attempt 1", 1, worker_id)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert f"job {job_id}: outcome refused" in err


def test_sigint_finishes_the_running_job_and_hands_back_the_others(
    broker: Any, namespace: str, client: Any, start_node: Any
) -> None:
    proc = start_node("sleeper", broker.target, namespace, "1")
    worker_id = int(_read_until(proc, "running")[-1].split()[1])
    running = client.enqueue("sleep", [1000])
    _read_until(proc, f"started {running} 0")
    queued = client.enqueue("sleep", [10])
    # Made active under the Node worker without its knowing (as if lost on the way to it).
    extra = client.enqueue("sleep", [10], queue="elsewhere")
    orphan = client.dequeue(worker_id, id=extra, queues=["elsewhere"])
    assert orphan is not None and orphan.id == extra
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert '"stopped":true' in out
    assert client.job_info(running).state == "finished"
    assert client.job_info(running).result == "attempt 0"
    assert client.job_info(queued).state == "inactive"
    assert client.job_info(orphan.id).state == "inactive"
    assert client.stats().active_jobs == 0
    assert list(client.list_workers()) == []
