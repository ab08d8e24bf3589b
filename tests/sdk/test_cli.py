"""The `jobwire` command in-process against the session broker (and once as a real process).

Each test calls `jobwire.cli.main([...])` with `--target` and `--namespace`, captures stdout and
stderr, and checks the text or the `--json` document, the error line and the exit code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from broker.keyspace import Keyspace
from jobwire import Client
from jobwire.cli import main

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def rows(self) -> list[list[str]]:
        """The table on stdout, header first, split on runs of spaces."""
        return [line.split() for line in self.out.splitlines()]


@pytest.fixture
def jw(broker: Any, namespace: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Runs `jobwire --target <broker> --namespace <ns> WORDS...` in-process."""

    def run(*words: str) -> Run:
        code = main(["--target", broker.target, "--namespace", namespace, *words])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def r(redis_server: str) -> Iterator[sync_redis.Redis]:
    with sync_redis.Redis.from_url(redis_server) as client:
        yield client


def fail_jobs(client: Client, ids: list[int], result: Any = "boom") -> None:
    """Dequeue the given jobs and fail them for good (one attempt each)."""
    worker = client.register_worker()
    taken = client.dequeue_many(worker, len(ids), queues=["default", "other"])
    assert sorted(job.id for job in taken) == sorted(ids)
    assert all(client.complete_jobs([(job.id, job.retries, "failed", result) for job in taken]))


# --- jobs -------------------------------------------------------------------------------------


def test_enqueue_prints_the_id_and_show_has_every_option(jw, client):
    parent = int(jw("job", "enqueue", "prepare").out)
    run = jw(
        "job",
        "enqueue",
        "add",
        "-a",
        "[2, 3]",
        "-n",
        '{"who": "cli"}',
        "-A",
        "3",
        "-d",
        "60",
        "-E",
        "600",
        "-P",
        str(parent),
        "-p",
        "7",
        "-q",
        "other",
        "-x",
    )
    assert run.code == 0 and run.err == ""
    job_id = int(run.out)
    info = client.job_info(job_id)
    assert (info.task, info.args, info.notes, info.attempts) == ("add", [2, 3], {"who": "cli"}, 3)
    assert (info.parents, info.priority, info.queue, info.lax) == ([parent], 7, "other", True)
    assert info.expires is not None and info.delayed > info.created

    shown = jw("job", "show", str(job_id), "--json").json
    assert shown["id"] == job_id and shown["args"] == [2, 3] and shown["state"] == "inactive"
    assert shown["created"].endswith("Z") and shown["finished"] is None

    human = jw("job", "show", str(job_id))
    lines = dict(line.split(":", 1) for line in human.out.splitlines())
    assert lines["task"].strip() == "add" and lines["args"].strip() == "[2, 3]"
    assert lines["notes"].strip() == '{"who": "cli"}'
    assert lines["delayed"].strip().endswith("(in 59s)") or "(in 1m)" in lines["delayed"]
    assert lines["created"].strip().endswith("s ago)")


def test_minion_flags_still_work(jw, client):
    job_id = int(jw("job", "-e", "add", "-a", "[2,3]", "-p", "5").out)
    assert client.job_info(job_id).priority == 5
    assert jw("job", str(job_id), "--json").json["task"] == "add"
    assert jw("job", "-s", "--json").json["inactive_jobs"] == 1
    assert jw("--json", "job", "-q", "default").json["total"] == 1
    assert jw("job", "--remove", str(job_id)).code == 0
    assert client.job_info(job_id) is None


def test_list_filters_paging_and_table(jw, client):
    a = client.enqueue("alpha", queue="one", notes={"tag": 1})
    b = client.enqueue("beta", queue="two")
    c = client.enqueue("alpha", queue="two", priority=3)
    fail_jobs(client, [])  # a worker exists; no job taken
    listed = jw("job")  # `list` is the default
    assert listed.code == 0
    assert listed.rows[0] == ["ID", "STATE", "QUEUE", "TASK", "PRIORITY", "CREATED"]
    assert [row[:5] for row in listed.rows[1:]] == [
        [str(c), "inactive", "two", "alpha", "3"],
        [str(b), "inactive", "two", "beta", "0"],
        [str(a), "inactive", "one", "alpha", "0"],
    ]
    assert listed.rows[1][5].endswith("Z")

    def ids(*words: str) -> list[int]:
        document = jw("job", "list", "--json", *words).json
        return [job["id"] for job in document["jobs"]]

    assert ids("-t", "alpha") == [c, a]
    assert ids("-q", "two") == [c, b]
    assert ids("-q", "one", "--queue", "two", "-t", "beta") == [b]
    assert ids("-S", "inactive", "-S", "failed") == [c, b, a]
    assert ids("-S", "finished") == []
    assert ids("-n", '["tag"]') == [a]
    assert ids("--before", str(c)) == [b, a]
    page = jw("job", "list", "--json", "-l", "1", "-o", "1").json
    assert [job["id"] for job in page["jobs"]] == [b] and page["total"] == 3

    paged = jw("job", "list", "-l", "2")
    assert len(paged.rows) == 3 and "jobs 1-2 of 3" in paged.err


def test_show_retry_remove_errors(jw, client):
    for words in (
        ("job", "show", "999"),
        ("job", "999"),
        ("job", "retry", "999"),
        ("job", "remove", "999"),
    ):
        run = jw(*words)
        assert (run.code, run.out, run.err) == (1, "", "jobwire: Job does not exist.\n")

    job_id = client.enqueue("slow")
    worker = client.register_worker()
    assert client.dequeue(worker).id == job_id
    run = jw("job", "remove", str(job_id))
    assert (run.code, run.err) == (1, "jobwire: Job is active.\n")
    assert client.job_info(job_id).state == "active"


def test_retry_applies_options_and_works_on_active_jobs(jw, client):
    job_id = client.enqueue("flaky", priority=1)
    fail_jobs(client, [job_id])
    run = jw("job", "retry", str(job_id), "-p", "9", "-q", "other", "-A", "4", "-d", "30")
    assert (run.code, run.out, run.err) == (0, "", "")
    info = client.job_info(job_id)
    assert (info.state, info.priority, info.queue, info.attempts, info.retries) == (
        "inactive",
        9,
        "other",
        4,
        1,
    )
    assert info.delayed.timestamp() > time.time() + 20

    assert jw("job", "-R", str(job_id), "--json").json == {"id": job_id, "retried": True}
    assert client.job_info(job_id).retries == 2
    assert client.job_info(job_id).priority == 9  # options not given keep the job's values


def test_invalid_argument_from_the_broker_is_one_line(jw):
    run = jw("job", "enqueue", "")
    assert run.code == 1 and run.out == ""
    assert run.err == "jobwire: INVALID_ARGUMENT: task: must not be empty\n"


def test_usage_errors_exit_2(jw, capsys):
    for words in (
        ("job", "enqueue", "add", "-a", "{not json"),
        ("job", "enqueue", "add", "-a", '{"a": 1}'),
        ("job", "list", "-S", "sleeping"),
        ("job", "show", "x"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            jw(*words)
        assert exit_info.value.code == 2
    assert "must be a JSON array" in capsys.readouterr().err


def test_unreachable_broker(capsys, namespace):
    assert main(["--target", "127.0.0.1:1", "job", "stats"]) == 1
    assert capsys.readouterr().err == "jobwire: cannot reach broker at 127.0.0.1:1 (UNAVAILABLE)\n"


def test_target_and_namespace_from_the_environment(broker, namespace, client, capsys, monkeypatch):
    monkeypatch.setenv("JOBWIRE_TARGET", broker.target)
    monkeypatch.setenv("JOBWIRE_NAMESPACE", namespace)
    job_id = client.enqueue("env")
    assert main(["job", "--json"]) == 0
    assert [job["id"] for job in json.loads(capsys.readouterr().out)["jobs"]] == [job_id]


def test_retry_failed_over_hundreds_of_jobs_shows_progress(jw, client):
    ids = client.enqueue_many([{"task": "bulk"}] * 250 + [{"task": "other", "queue": "other"}])
    fail_jobs(client, ids)
    client.enqueue("bulk")  # inactive: not touched

    run = jw("job", "retry-failed", "-t", "bulk")
    assert run.code == 0
    assert run.out == "Retried 250 failed jobs.\n"
    assert run.err.splitlines() == [
        "retried 100 of 250 failed jobs...",
        "retried 200 of 250 failed jobs...",
    ]
    stats = client.stats()
    assert (stats.failed_jobs, stats.inactive_jobs) == (1, 251)

    fail_jobs(client, [job.id for job in client.jobs(states=["inactive"], tasks=["bulk"])])
    assert jw("job", "--remove-failed", "-q", "other", "--json").json == {
        "removed": 1,
        "skipped": 0,
    }
    run = jw("job", "remove-failed", "--json")
    assert run.json == {"removed": 251, "skipped": 0}
    assert run.err.count("\n") == 2
    assert client.stats().failed_jobs == 0 and jw("job", "list", "--json").json["total"] == 0


def test_stats_and_history(jw, client):
    job_id = client.enqueue("done")
    worker = client.register_worker()
    job = client.dequeue(worker)
    assert client.finish_job(job.id, job.retries, "ok")

    stats = jw("job", "stats", "--json").json
    assert stats["finished_jobs"] == 1 and stats["enqueued_jobs"] == job_id
    assert set(stats) >= {"active_workers", "inactive_workers", "schedules", "uptime"}
    human = jw("job", "stats").out
    assert any(line.split() == ["finished_jobs:", "1"] for line in human.splitlines())

    history = jw("job", "-H", "--json").json
    assert len(history["daily"]) == 24 and sum(h["finished_jobs"] for h in history["daily"]) == 1
    table = jw("job", "history").rows
    assert table[0] == ["HOUR", "FINISHED", "FAILED"] and len(table) == 25
    assert table[-1][1] == "1" and table[-1][0].endswith("Z")  # Minion: now - 23h ... now


def test_broadcast(jw, client):
    one, two = client.register_worker(), client.register_worker()
    run = jw("job", "broadcast", "jobs", "-a", "[3]", str(one))
    assert (run.code, run.out, run.err) == (0, "", "")
    assert client.receive(one) == [["jobs", 3]] and client.receive(two) == []
    assert jw("job", "-b", "stop", "--json").json == {"command": "stop", "sent": True}
    assert client.receive(one) == [["stop"]] == client.receive(two)
    run = jw("job", "broadcast", "jobs", "999")
    assert (run.code, run.err) == (1, "jobwire: No worker received the command.\n")


# --- workers and locks ------------------------------------------------------------------------


def test_worker_list_and_show(jw, client):
    first = client.register_worker(status={"queues": ["default"]}, host="alpha", pid=11)
    second = client.register_worker(host="beta", pid=22)
    job_id = client.enqueue("busy")
    client.dequeue(second)

    table = jw("worker", "list").rows
    assert table[0] == ["ID", "HOST", "PID", "JOBS", "STARTED", "NOTIFIED"]
    assert [row[:4] for row in table[1:]] == [
        [str(second), "beta", "22", "1"],
        [str(first), "alpha", "11", "0"],
    ]
    document = jw("job", "-w", "--json").json
    assert [w["id"] for w in document["workers"]] == [second, first] and document["total"] == 2

    shown = jw("worker", "list", str(second), "--json").json
    assert shown["jobs"] == [job_id] and shown["host"] == "beta"
    human = jw("job", "-w", str(first)).out
    assert "host:     alpha" in human and 'status:   {"queues": ["default"]}' in human
    run = jw("worker", "list", "999")
    assert (run.code, run.err) == (1, "jobwire: Worker does not exist.\n")


def test_locks(jw, client):
    assert client.lock("shared", 60, limit=2) and client.lock("shared", 60, limit=2)
    assert client.lock("solo", 60)
    table = jw("lock").rows
    assert table[0] == ["ID", "NAME", "EXPIRES"]
    assert sorted(row[1] for row in table[1:]) == ["shared", "shared", "solo"]
    assert len(jw("lock", "list", "shared", "--json").json["locks"]) == 2
    assert jw("job", "-L", "solo", "--json").json["total"] == 1

    assert jw("lock", "unlock", "shared").code == 0
    assert jw("job", "-U", "shared").code == 0
    assert not client.is_locked("shared") and client.is_locked("solo")
    run = jw("lock", "unlock", "shared")
    assert (run.code, run.err) == (1, "jobwire: Lock does not exist.\n")


# --- schedules ----------------------------------------------------------------------------------


def make_due(r: sync_redis.Redis, namespace: str, schedule_id: int) -> None:
    """Put a schedule's next_run in the past, where the broker keeps it (broker/keyspace.py)."""
    ks = Keyspace(namespace)
    r.hset(ks.schedule(schedule_id), "next_run", "1000000.000000")
    r.zadd(ks.key("schedules_due"), {str(schedule_id): 1_000_000})


def test_schedule_add_list_show_dispatch(jw, client, r, namespace):
    nightly = int(jw("schedule", "add", "nightly", "0 3 * * *", "cleanup", "-a", "[1]").out)
    minion = jw("schedule", "-e", "hourly", "-c", "@hourly", "-t", "report", "-p", "4", "--json")
    hourly = minion.json["id"]
    mixed = int(jw("schedule", "add", "mixed", "-t", "sweep", "*/5 * * * *", "-q", "other").out)

    table = jw("schedule").rows
    assert table[0] == ["ID", "NAME", "TASK", "CRON", "NEXT_RUN", "PAUSED", "LAST_JOB"]
    assert [row[:3] for row in table[1:]] == [
        [str(mixed), "mixed", "sweep"],
        [str(hourly), "hourly", "report"],
        [str(nightly), "nightly", "cleanup"],
    ]
    assert table[3][3:5] == ["0", "3"] and table[3][-3].endswith("T03:00:00Z")  # cron is 5 words
    listed = jw("schedule", "list", "--json", "-l", "1").json
    assert [s["name"] for s in listed["schedules"]] == ["mixed"] and listed["total"] == 3

    shown = jw("schedule", "show", "hourly", "--json").json
    assert (shown["cron"], shown["task"], shown["priority"], shown["paused"]) == (
        "@hourly",
        "report",
        4,
        False,
    )
    assert shown["next_run"].endswith(":00:00Z")
    human = jw("schedule", "mixed").out
    assert "queue:    other" in human and "cron:     */5 * * * *" in human

    make_due(r, namespace, nightly)
    run = jw("schedule", "dispatch")
    assert run.rows[0] == ["ID", "NAME", "JOB"] and run.rows[1][:2] == [str(nightly), "nightly"]
    job_id = int(run.rows[1][2])
    assert client.job_info(job_id).args == [1]
    assert jw("schedule", "-d", "--json").json == {"dispatched": []}
    assert jw("schedule", "show", "nightly", "--json").json["last_job"] == job_id


def test_schedule_pause_resume_remove(jw, client):
    jw("schedule", "add", "tick", "* * * * *", "tick")
    assert jw("schedule", "pause", "tick").code == 0
    assert jw("schedule", "show", "tick", "--json").json["paused"] is True
    assert jw("schedule", "list").rows[1][-2] == "yes"
    assert jw("schedule", "-r", "tick", "--json").json == {"name": "tick", "resumed": True}
    assert jw("schedule", "show", "tick", "--json").json["paused"] is False
    assert jw("schedule", "-P", "tick").code == 0 and jw("schedule", "remove", "tick").code == 0
    assert client.list_schedules().total == 0
    for words in (
        ("schedule", "show", "tick"),
        ("schedule", "tick"),
        ("schedule", "pause", "tick"),
        ("schedule", "resume", "tick"),
        ("schedule", "-R", "tick"),
    ):
        run = jw(*words)
        assert (run.code, run.out, run.err) == (1, "", "jobwire: Schedule does not exist.\n")


def test_schedule_errors(jw, client):
    run = jw("schedule", "add", "bad", "0 3 * *", "cleanup")
    assert run.code == 1 and run.out == ""
    assert run.err.startswith("jobwire: INVALID_ARGUMENT: ")
    assert 'Invalid cron expression "0 3 * *": expected 5 fields' in run.err
    assert run.err.count("\n") == 1
    run = jw("schedule", "add", "bad", "61 * * * *", "cleanup")
    assert 'Value out of range in minute field "61" (0-59)' in run.err
    run = jw("schedule", "add", "bad", "@often", "cleanup")
    assert 'Unknown cron nickname "@often"' in run.err
    assert jw("schedule", "-e", "bad", "-t", "x").err == (
        "jobwire: Cron expression is required (-c).\n"
    )
    assert jw("schedule", "-e", "bad", "-c", "@daily").err == "jobwire: Task is required (-t).\n"
    assert client.list_schedules().total == 0


# --- running workers --------------------------------------------------------------------------


def test_worker_import_errors(jw):
    run = jw("worker", "-m", "no_such_module_xyz")
    assert run.code == 1 and run.err.startswith("jobwire: cannot import no_such_module_xyz:")
    run = jw("worker", "-m", "json:nothing_here")
    assert (run.code, run.err) == (1, "jobwire: json has no attribute 'nothing_here'\n")
    run = jw("worker", "-m", "json:__name__")
    assert run.code == 1 and "not a Worker" in run.err


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "sdk" / "python")])
    return env


def _jobwire() -> list[str]:
    """The installed console script next to this interpreter, else `python -m jobwire.cli`."""
    script = Path(sys.executable).with_name("jobwire")
    return [str(script)] if script.exists() else [sys.executable, "-m", "jobwire.cli"]


def test_console_script(broker, namespace, client):
    client.enqueue("one")
    helped = subprocess.run(
        [*_jobwire(), "--help"], capture_output=True, text=True, env=_env(), timeout=30
    )
    assert helped.returncode == 0 and "usage: jobwire" in helped.stdout
    assert all(word in helped.stdout for word in ("broker", "worker", "job", "lock", "schedule"))
    stats = subprocess.run(
        [
            *_jobwire(),
            "--target",
            broker.target,
            "--namespace",
            namespace,
            "job",
            "stats",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["inactive_jobs"] == 1


TASKS_MODULE = """
from jobwire import Client, Worker


def add(job, a, b):
    return a + b


tasks = {"add": add}  # a mapping: the command line builds the Worker


def make(client):  # a factory: gets the command line's client
    made = Worker(client, queues=["ignored"])
    made.add_task("add", add)
    return made


worker = Worker(Client.from_env(), concurrency=1)  # built here: JOBWIRE_TARGET, JOBWIRE_NAMESPACE
worker.add_task("add", add)
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("spec", ["cli_tasks:tasks", "cli_tasks:make", "cli_tasks"])
def test_worker_runs_tasks_from_an_import_path(broker, namespace, client, tmp_path, spec):
    (tmp_path / "cli_tasks.py").write_text(TASKS_MODULE)
    job_id = client.enqueue("add", [2, 3], queue="math")
    env = {**_env(), "JOBWIRE_TARGET": broker.target, "JOBWIRE_NAMESPACE": namespace}
    proc = subprocess.Popen(
        [*_jobwire(), "worker", "-m", spec, "-q", "math", "-j", "2", "--mode", "poll"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = client.result(job_id, timeout=30)
        assert info is not None and (info.state, info.result) == ("finished", 5)
        [worker] = client.list_workers().items
        # the command line's -q, -j and --mode apply to every kind of Worker
        assert worker.status["queues"] == ["math"] and worker.status["jobs"] == 2
        assert worker.status["mode"] == "poll"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "worker for add on queues math (poll)" in err
    assert client.list_workers().total == 0
