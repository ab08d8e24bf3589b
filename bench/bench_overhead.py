"""What authentication and metrics cost: end-to-end stream throughput with neither, and with a
token file (every call carries and checks a bearer token) plus the HTTP port's metrics.

Each round runs ``bench_stream.py`` (one ``jobwire.Worker`` process, ``--jobs`` no-op jobs
enqueued in batches and pushed over the stream) once plain and once guarded, alternating so
that a machine whose speed drifts affects both alike; it prints every run, the medians, and the
guarded/plain ratios of jobs/s and of CPU per job (broker, redis-server, worker, client).

    .venv/bin/python bench/bench_overhead.py --rounds 5
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROW = "jobwire.Worker x1"


@dataclass(frozen=True)
class Run:
    jobs_per_s: float
    cpu_per_1k: float  # CPU seconds per 1,000 jobs, every process of the bench added up


def run_stream(jobs: int, env: dict[str, str]) -> Run:
    """One bench_stream.py run with one SDK worker; its jobs/s and CPU per 1,000 jobs."""
    args = [sys.executable, str(HERE / "bench_stream.py"), "--workers", "1", "--raw-workers", "",
            "--latency-workers", "0", "--jobs", str(jobs)]  # fmt: skip
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    for line in out.stdout.splitlines():
        if line.startswith(ROW) and "run 1" not in line:
            # workers, jobs/s, target, runs, enqueue/s, cmds/job, evalsha/job, CPU broker,
            # redis, workers, client, cores ours, others
            numbers = []
            for field in line[len(ROW) :].split():
                try:
                    numbers.append(float(field.replace(",", "")))
                except ValueError:  # "(c=200)", "met", "MISSED"
                    continue
            return Run(numbers[0], sum(numbers[5:9]))
    raise SystemExit(f"bench_stream.py printed no {ROW!r} row:\n{out.stdout}\n{out.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="plain/guarded pairs")
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per run")
    args = parser.parse_args()

    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBWIRE_")}
    with tempfile.TemporaryDirectory(prefix="jobwire-overhead-") as tmp:
        secret = secrets.token_urlsafe(32)
        tokens = Path(tmp) / "tokens.toml"
        tokens.write_text(
            f'[[token]]\nsecret = "{secret}"\nroles = ["admin"]\nnamespaces = ["*"]\n'
        )
        plain = {**base, "JOBWIRE_HTTP_LISTEN": ""}
        guarded = {
            **base,
            "JOBWIRE_HTTP_LISTEN": "127.0.0.1:0",
            "JOBWIRE_AUTH_FILE": str(tokens),
            "JOBWIRE_TOKEN": secret,
        }
        runs: dict[str, list[Run]] = {"plain": [], "guarded": []}
        for i in range(args.rounds):
            for name, env in (("plain", plain), ("guarded", guarded)):
                run = run_stream(args.jobs, env)
                runs[name].append(run)
                print(f"round {i + 1} {name:8} jobs/s {run.jobs_per_s:8,.0f}  "
                      f"CPU s per 1k jobs {run.cpu_per_1k:.3f}", flush=True)  # fmt: skip

    def median(name: str, field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in runs[name]))

    print(f"\nmedians of {args.rounds} ({args.jobs:,} jobs each, one jobwire.Worker, c=200):")
    print(f"{'':10}{'jobs/s':>10}{'CPU s/1k':>10}")
    for name in runs:
        print(f"{name:10}{median(name, 'jobs_per_s'):10,.0f}{median(name, 'cpu_per_1k'):10.3f}")
    tput = median("guarded", "jobs_per_s") / median("plain", "jobs_per_s")
    cpu = median("guarded", "cpu_per_1k") / median("plain", "cpu_per_1k")
    print(f"guarded/plain of the medians: throughput {tput:.3f}, CPU per job {cpu:.3f}")
    # Each round's pair ran back to back, so its ratio is the least affected by a drifting machine.
    pairs = list(zip(runs["guarded"], runs["plain"], strict=True))
    t_ratios = [g.jobs_per_s / p.jobs_per_s for g, p in pairs]
    c_ratios = [g.cpu_per_1k / p.cpu_per_1k for g, p in pairs]
    print(f"per round: throughput {' '.join(f'{r:.3f}' for r in t_ratios)} "
          f"(median {statistics.median(t_ratios):.3f}); CPU per job "
          f"{' '.join(f'{r:.3f}' for r in c_ratios)} (median {statistics.median(c_ratios):.3f})")


if __name__ == "__main__":
    main()
