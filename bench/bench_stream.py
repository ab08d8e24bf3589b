"""Jobs pushed over the Subscribe stream: end-to-end throughput and enqueue->start latency.

Everything runs in its own process on this machine: a private redis-server (free port, never
6379), one broker, worker processes and, for latency, a paced producer. Tasks are async no-ops.
Measures, each ``--repeat`` times (the median printed):

- end to end: ``--jobs`` jobs enqueued with ``enqueue_many`` (batches of ``--batch``) while
  ``--workers`` processes of ``jobwire.Worker`` run them; jobs/s from the first enqueue until
  ``stats().finished_jobs`` counts them all. "raw" rows use a minimal consumer on the generated
  stubs (Subscribe, one CompleteJobs per stream message): what the broker can do without the SDK
  runtime. With each: Redis commands per job (``INFO commandstats`` deltas, the polling stats
  calls left out) and CPU seconds per 1,000 jobs of the broker, redis-server and the workers;
- latency: a producer process enqueues one job at a time at ``--rate`` jobs/s for ``--seconds``
  to idle, ready workers; afterwards every finished job is read with ``list_jobs`` and
  ``started - created`` (enqueue->start) and ``finished - created`` are taken (all Redis TIME,
  so no clock skew between processes).

    /work/venv/bin/python bench/bench_stream.py --repeat 3
    /work/venv/bin/python bench/bench_stream.py --py-spy /tmp/prof   # + broker CPU profile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "sdk" / "python"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import redis  # noqa: E402

from bench._harness import (  # noqa: E402
    NAMESPACE,
    BrokerProcess,
    broker_process,
    command_calls,
    cpu_seconds,
    redis_server,
)

TASK = "noop"
# What the stream path is held to (printed as met or missed).
TARGET_RATE = 5000.0
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
POLL_INTERVAL = 0.005  # seconds between stats calls while waiting for the last job
PY_SPY = Path(sys.executable).with_name("py-spy")


# Child processes ---------------------------------------------------------------------------------


def sdk_worker(target: str, concurrency: int) -> None:
    """A `jobwire.Worker` with one async no-op task; prints "ready" once subscribed."""
    from jobwire import Client, Worker
    from jobwire.worker import Job

    worker = Worker(
        Client(target, namespace=NAMESPACE), queues=("default",), concurrency=concurrency, spare=0
    )

    @worker.task(TASK)
    async def noop(job: Job, *args: Any) -> None:
        return None

    async def main() -> None:
        run = asyncio.ensure_future(worker.run_async(handle_signals=True))
        while not worker.ready.is_set() and not run.done():
            await asyncio.sleep(0.005)
        print("ready", flush=True)
        await run

    asyncio.run(main())


async def raw_worker(target: str, concurrency: int) -> None:
    """The least a streaming worker does: register, Subscribe, CompleteJobs per message."""
    import grpc

    from jobwire.v1 import job_service_pb2 as jobs_pb
    from jobwire.v1 import job_service_pb2_grpc as jobs_grpc
    from jobwire.v1 import worker_service_pb2 as workers_pb
    from jobwire.v1 import worker_service_pb2_grpc as workers_grpc

    async with grpc.aio.insecure_channel(target) as channel:
        workers: Any = workers_grpc.WorkerServiceStub(channel)
        jobs: Any = jobs_grpc.JobServiceStub(channel)
        reply = await workers.RegisterWorker(
            workers_pb.RegisterWorkerRequest(namespace=NAMESPACE, host="bench", pid=os.getpid())
        )
        call = workers.Subscribe(
            workers_pb.SubscribeRequest(
                namespace=NAMESPACE, worker_id=reply.id, queues=["default"], tasks=[TASK],
                concurrency=concurrency,
            )
        )  # fmt: skip
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, call.cancel)
        await call.initial_metadata()
        print("ready", flush=True)
        pending: set[asyncio.Future[Any]] = set()
        finished = jobs_pb.OUTCOME_FINISHED
        with contextlib.suppress(asyncio.CancelledError, grpc.RpcError):
            async for message in call:
                if not message.jobs:
                    continue
                completions = [
                    jobs_pb.Completion(id=j.id, retries=j.retries, outcome=finished)
                    for j in message.jobs
                ]
                done = asyncio.ensure_future(
                    jobs.CompleteJobs(
                        jobs_pb.CompleteJobsRequest(namespace=NAMESPACE, completions=completions)
                    )
                )
                pending.add(done)
                done.add_done_callback(pending.discard)
        await asyncio.gather(*pending, return_exceptions=True)
        await workers.UnregisterWorker(
            workers_pb.UnregisterWorkerRequest(namespace=NAMESPACE, id=reply.id)
        )


def producer(target: str, rate: float, seconds: float) -> None:
    """Enqueues one job at a time on a fixed schedule; prints a JSON summary when done."""
    from jobwire import Client

    with Client(target, namespace=NAMESPACE) as client:
        client.stats()  # connect first
        total = int(rate * seconds)
        late = 0.0
        start = time.perf_counter()
        for i in range(total):
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            else:
                late = max(late, -wait)
            client.enqueue(TASK, [i])
        elapsed = time.perf_counter() - start
    print(json.dumps({"sent": total, "elapsed": elapsed, "late_ms": late * 1000}), flush=True)


def child(args: list[str]) -> None:
    kind, target = args[0], args[1]
    if kind == "sdk":
        sdk_worker(target, int(args[2]))
    elif kind == "raw":
        asyncio.run(raw_worker(target, int(args[2])))
    else:
        producer(target, float(args[2]), float(args[3]))


def spawn(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", *map(str, args)], stdout=subprocess.PIPE, text=True
    )


@contextlib.contextmanager
def worker_processes(kind: str, target: str, count: int, concurrency: int) -> Iterator[list[int]]:
    """`count` worker processes, each subscribed before this yields their pids."""
    procs = [spawn(kind, target, concurrency) for _ in range(count)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                sys.exit(f"a {kind} worker did not start")
        yield [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def profiled(broker: BrokerProcess, out: Path | None) -> Iterator[None]:
    """py-spy record (raw folded stacks, idle excluded) of the broker while the block runs."""
    if out is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(PY_SPY), "record", "--pid", str(broker.pid), "--format", "raw", "--rate", "250",
         "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(0.5)  # py-spy attaches
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


# Measuring ---------------------------------------------------------------------------------------


@dataclass
class Usage:
    """Redis commands and CPU seconds of the processes involved, between two moments."""

    r: redis.Redis
    pids: dict[str, list[int]]
    calls: tuple[int, int] = (0, 0)
    commands: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def _cpu(self) -> dict[str, float]:
        cpu = {name: sum(map(cpu_seconds, pids)) for name, pids in self.pids.items()}
        cpu["machine"] = machine_busy()
        return cpu

    def _commands(self) -> dict[str, int]:
        stats = self.r.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def start(self) -> None:
        self.commands = self._commands()
        self.calls = command_calls(self.r)
        self.cpu = self._cpu()

    def stop(self, jobs: int, extra_calls: tuple[int, int] = (0, 0)) -> dict[str, float]:
        """Per-job commands and per-1,000-job CPU seconds; `extra_calls` are left out."""
        cpu = self._cpu()
        calls = command_calls(self.r)
        commands = self._commands()
        # The INFO call that took `calls` is one command too.
        total = calls[0] - self.calls[0] - 1 - extra_calls[0]
        scripts = calls[1] - self.calls[1] - extra_calls[1]
        figures = {"cmds/job": total / jobs, "evalsha/job": scripts / jobs}
        for name, seconds in cpu.items():
            figures[f"{name} cpu"] = (seconds - self.cpu[name]) / jobs * 1000
        for name, n in commands.items():
            figures[f"cmd {name}"] = (n - self.commands.get(name, 0)) / jobs
        return figures


def machine_busy() -> float:
    """CPU seconds all CPUs of the machine spent busy so far (/proc/stat), for every process."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def stats_cost(client: Any, r: redis.Redis) -> tuple[int, int]:
    """Redis commands (all, scripts) of one stats call, to take the polling out of the counts."""
    before = command_calls(r)
    client.stats()
    after = command_calls(r)
    return after[0] - before[0] - 1, after[1] - before[1]


def wait_finished(client: Any, jobs: int, timeout: float) -> tuple[float, int]:
    """Polls stats until `jobs` jobs finished; (perf_counter when seen, stats calls made)."""
    deadline = time.perf_counter() + timeout
    polls = 0
    while True:
        polls += 1
        if client.stats().finished_jobs >= jobs:
            return time.perf_counter(), polls
        if time.perf_counter() > deadline:
            sys.exit(f"timed out waiting for {jobs} finished jobs")
        time.sleep(POLL_INTERVAL)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass
class Config:
    name: str
    kind: str  # "sdk" or "raw"
    processes: int
    concurrency: int

    @property
    def label(self) -> str:
        what = "jobwire.Worker" if self.kind == "sdk" else "raw consumer"
        return f"{what} x{self.processes} (c={self.concurrency})"


@dataclass
class Result:
    """Figures of one configuration over the repeats (the median is printed)."""

    runs: list[dict[str, float]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(run.get(key, 0.0) for run in self.runs)

    def values(self, key: str) -> list[float]:
        return [run[key] for run in self.runs]


def throughput_run(
    broker: BrokerProcess,
    r: redis.Redis,
    redis_pid: int,
    config: Config,
    jobs: int,
    batch: int,
    profile: Path | None,
) -> dict[str, float]:
    from jobwire import Client

    r.flushall()
    payload = [[{"task": TASK, "args": [i]} for i in range(n, min(jobs, n + batch))]
               for n in range(0, jobs, batch)]  # fmt: skip
    with (
        Client(broker.target, namespace=NAMESPACE) as client,
        worker_processes(config.kind, broker.target, config.processes, config.concurrency) as pids,
        profiled(broker, profile),
    ):
        per_stats = stats_cost(client, r)
        usage = Usage(r, {"broker": [broker.pid], "redis": [redis_pid], "workers": pids,
                          "client": [os.getpid()]})  # fmt: skip
        usage.start()
        start = time.perf_counter()
        for jobs_batch in payload:
            client.enqueue_many(jobs_batch)
        enqueued = time.perf_counter()
        end, polls = wait_finished(client, jobs, 120)
        figures = usage.stop(jobs, (polls * per_stats[0], polls * per_stats[1]))
    elapsed = end - start
    ours = sum(figures[f"{name} cpu"] for name in ("broker", "redis", "workers", "client"))
    figures.update(
        {"jobs/s": jobs / elapsed, "enqueue jobs/s": jobs / (enqueued - start),
         "cores ours": ours * jobs / 1000 / elapsed,
         "cores others": (figures["machine cpu"] - ours) * jobs / 1000 / elapsed}
    )  # fmt: skip
    return figures


def latency_run(
    broker: BrokerProcess,
    r: redis.Redis,
    redis_pid: int,
    config: Config,
    rate: float,
    seconds: float,
    profile: Path | None,
) -> dict[str, float]:
    from jobwire import Client

    r.flushall()
    with (
        Client(broker.target, namespace=NAMESPACE) as client,
        worker_processes(config.kind, broker.target, config.processes, config.concurrency) as pids,
        profiled(broker, profile),
    ):
        time.sleep(0.2)  # workers idle and ready
        usage = Usage(r, {"broker": [broker.pid], "redis": [redis_pid], "workers": pids})
        usage.start()
        proc = spawn("produce", broker.target, rate, seconds)
        out, _ = proc.communicate()
        summary = json.loads(out.strip().splitlines()[-1])
        sent = int(summary["sent"])
        per_stats = stats_cost(client, r)
        _, polls = wait_finished(client, sent, 60)
        # The producer's own stats call: one more.
        figures = usage.stop(sent, ((polls + 1) * per_stats[0], (polls + 1) * per_stats[1]))
        starts: list[float] = []
        finishes: list[float] = []
        for info in client.jobs(states=["finished"], fetch=1000):
            assert info.created and info.started and info.finished
            starts.append((info.started - info.created).total_seconds() * 1000)
            finishes.append((info.finished - info.created).total_seconds() * 1000)
    starts.sort()
    finishes.sort()
    figures.update(
        {"jobs": len(starts), "rate": sent / summary["elapsed"], "late ms": summary["late_ms"],
         "start p50": percentile(starts, 0.5), "start p99": percentile(starts, 0.99),
         "start max": starts[-1], "finish p50": percentile(finishes, 0.5),
         "finish p99": percentile(finishes, 0.99)}
    )  # fmt: skip
    return figures


# Profiles ----------------------------------------------------------------------------------------


def summarize_profile(path: Path, top: int = 12) -> None:
    """Prints where the broker's CPU went: self time per function and inclusive per file."""
    if not path.exists():
        print(f"  (no profile at {path}: did py-spy attach?)")
        return
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[short_frame(frames[-1])] += n
        for place in {frame_file(frame) for frame in frames}:
            inclusive[place] += n
    if not total:
        print("  (empty profile)")
        return
    print(f"  {total} samples; self time by function:")
    for name, n in own.most_common(top):
        print(f"    {n / total:6.1%}  {name}")
    print("  inclusive time by file (jobwire and grpc files):")
    for place, n in inclusive.most_common():
        if place.startswith(("broker/", "grpc", "redis/", "asyncio/")) and n / total >= 0.02:
            print(f"    {n / total:6.1%}  {place}")


def frame_file(frame: str) -> str:
    """The file of a py-spy frame: `fn (/abs/.../broker/store.py:12)` -> `broker/store.py`."""
    location = frame.rpartition("(")[2].rstrip(")").rpartition(":")[0]
    for marker in ("/broker/", "/site-packages/", "/lib/python3.11/"):
        if marker in location:
            rest = location.rpartition(marker)[2]
            return ("broker/" + rest) if marker == "/broker/" else rest
    return location


def short_frame(frame: str) -> str:
    name, _, location = frame.partition(" (")
    return f"{name} ({frame_file(frame)}:{location.rstrip(')').rpartition(':')[2]})"


# Report ------------------------------------------------------------------------------------------


def fmt_runs(values: list[float], spec: str) -> str:
    return ", ".join(format(v, spec) for v in values)


def print_throughput(results: dict[str, tuple[Config, Result]], jobs: int, repeat: int) -> None:
    print(f"\nEnd to end: {jobs:,} no-op jobs, enqueue_many -> stream -> finished "
          f"(median of {repeat}; target >= {TARGET_RATE:,.0f} jobs/s)")  # fmt: skip
    head = (f"{'workers':<34}{'jobs/s':>8} {'target':>7}  {'runs':<22}{'enqueue/s':>10}"
            f"{'cmds/job':>9}{'evalsha/job':>12}{'CPU s per 1k jobs: broker':>27}{'redis':>7}"
            f"{'workers':>8}{'client':>7}{'cores: ours':>12}{'others':>7}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for config, result in results.values():
        rate = result.median("jobs/s")
        mark = "met" if rate >= TARGET_RATE else "MISSED"
        print(f"{config.label:<34}{rate:>8,.0f} {mark:>7}  "
              f"{fmt_runs(result.values('jobs/s'), ',.0f'):<22}"
              f"{result.median('enqueue jobs/s'):>10,.0f}{result.median('cmds/job'):>9.2f}"
              f"{result.median('evalsha/job'):>12.3f}{result.median('broker cpu'):>27.3f}"
              f"{result.median('redis cpu'):>7.3f}{result.median('workers cpu'):>8.3f}"
              f"{result.median('client cpu'):>7.3f}{result.median('cores ours'):>12.2f}"
              f"{result.median('cores others'):>7.2f}")  # fmt: skip
    print("Redis commands per job (scripts' own calls included), median:")
    for config, result in results.values():
        names = {k for run in result.runs for k in run if k.startswith("cmd ")}
        top = sorted(((result.median(k), k[4:]) for k in names), reverse=True)[:10]
        print(f"  {config.label}: " + ", ".join(f"{name} {n:.2f}" for n, name in top if n >= 0.01))


def print_latency(
    results: dict[str, tuple[Config, Result]], rate: float, seconds: float, repeat: int
) -> None:
    print(f"\nLatency at a steady {rate:,.0f} jobs/s for {seconds:g} s, one enqueue per call "
          f"(ms, median of {repeat}; targets: start p50 <= {TARGET_P50_MS:g}, "
          f"p99 <= {TARGET_P99_MS:g})")  # fmt: skip
    head = (f"{'workers':<34}{'jobs':>6}{'rate':>6}{'start p50':>10}{'p99':>7}{'max':>7}"
            f"{'  targets':<10}{'finish p50':>11}{'p99':>7}{'cmds/job':>9}{'evalsha/job':>12}"
            f"{'broker CPU s/1k':>16}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for config, result in results.values():
        p50, p99 = result.median("start p50"), result.median("start p99")
        marks = "met" if p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS else (
            ("p50 " if p50 > TARGET_P50_MS else "") + ("p99 " if p99 > TARGET_P99_MS else "")
            + "MISSED")  # fmt: skip
        print(f"{config.label:<34}{result.median('jobs'):>6,.0f}{result.median('rate'):>6,.0f}"
              f"{p50:>10.2f}{p99:>7.2f}{result.median('start max'):>7.1f}  {marks:<10}"
              f"{result.median('finish p50'):>9.2f}{result.median('finish p99'):>7.2f}"
              f"{result.median('cmds/job'):>9.2f}{result.median('evalsha/job'):>12.3f}"
              f"{result.median('broker cpu'):>16.3f}")  # fmt: skip
    for config, result in results.values():
        print(f"  {config.label}: start p50 runs {fmt_runs(result.values('start p50'), '.2f')}; "
              f"p99 runs {fmt_runs(result.values('start p99'), '.2f')}; producer at most "
              f"{max(result.values('late ms')):.1f} ms behind schedule")  # fmt: skip


def counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per throughput run")
    parser.add_argument("--batch", type=int, default=1000, help="enqueue_many batch size")
    parser.add_argument(
        "--workers",
        type=counts,
        default=[1, 4],
        help="jobwire.Worker process counts for throughput, e.g. 1,4",
    )
    parser.add_argument(
        "--raw-workers",
        type=counts,
        default=[1],
        help="raw consumer process counts for throughput (empty: none)",
    )
    parser.add_argument("--concurrency", type=int, default=200, help="slots per SDK worker")
    parser.add_argument("--raw-concurrency", type=int, default=200, help="slots per raw consumer")
    parser.add_argument("--rate", type=float, default=500.0, help="latency: jobs/s enqueued")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency: seconds enqueuing")
    parser.add_argument(
        "--latency-workers",
        type=int,
        default=1,
        help="latency: processes of each kind (0 skips the latency runs)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record the broker with py-spy during the first repeat into DIR",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()  # fmt: skip
    if args.child:
        child(args.child)
        return

    throughput = [Config(f"sdk{n}", "sdk", n, args.concurrency) for n in args.workers]
    throughput += [Config(f"raw{n}", "raw", n, args.raw_concurrency) for n in args.raw_workers]
    latency = []
    if args.latency_workers:
        n = args.latency_workers
        latency = [Config(f"sdk{n}", "sdk", n, args.concurrency),
                   Config(f"raw{n}", "raw", n, args.raw_concurrency)]  # fmt: skip
    results_t = {c.name: (c, Result()) for c in throughput}
    results_l = {c.name: (c, Result()) for c in latency}
    profiles: list[Path] = []

    def profile(kind: str, config: Config, run: int) -> Path | None:
        if args.py_spy is None or run > 0:
            return None
        profiles.append(args.py_spy / f"broker-{kind}-{config.name}.txt")
        return profiles[-1]

    with redis_server() as url, broker_process(url) as broker:
        r = redis.Redis.from_url(url)
        info = r.info("server")
        print(f"jobwire stream bench: broker pid {broker.pid} at {broker.target}, redis-server "
              f"{info['redis_version']} at {url}, {os.cpu_count()} CPUs, --jobs {args.jobs}, "
              f"--repeat {args.repeat}; load average {os.getloadavg()[0]:.2f}",
              flush=True)  # fmt: skip
        pid = int(info["process_id"])

        def throughput_step(c: Config) -> Callable[[int], dict[str, float]]:
            return lambda run: throughput_run(
                broker, r, pid, c, args.jobs, args.batch, profile("throughput", c, run)
            )

        def latency_step(c: Config) -> Callable[[int], dict[str, float]]:
            return lambda run: latency_run(
                broker, r, pid, c, args.rate, args.seconds, profile("latency", c, run)
            )

        steps = [
            (f"throughput {c.label}", throughput_step(c), res) for c, res in results_t.values()
        ]
        steps += [(f"latency {c.label}", latency_step(c), res) for c, res in results_l.values()]
        for run in range(args.repeat):
            for name, step, result in steps:
                figures = step(run)
                result.runs.append(figures)
                key = "jobs/s" if "jobs/s" in figures else "start p50"
                print(f"  run {run + 1}: {name}: {key} {figures[key]:,.2f}", file=sys.stderr,
                      flush=True)  # fmt: skip
    print(f"load average at the end {os.getloadavg()[0]:.2f} (\"others\": CPU of processes "
          f"outside this bench during the runs, in cores)")  # fmt: skip
    if results_t:
        print_throughput(results_t, args.jobs, args.repeat)
    if results_l:
        print_latency(results_l, args.rate, args.seconds, args.repeat)
    for path in profiles:
        print(f"\nBroker profile {path}")
        summarize_profile(path)


if __name__ == "__main__":
    main()
