"""A jobwire.Worker process for fault tests: it records every run of a job in an append-only file.

Each record is one line `start|done <job id> <retries> <worker pid> <unix time>`, written with
a single O_APPEND write so that several workers can share the file and a SIGKILL never leaves
half a line. Task `sleep` (args: [seconds]) sleeps on the event loop, so many jobs overlap;
task `blob` (args: [payload, result_bytes]) takes a payload of any size and returns a result of
`result_bytes`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from jobwire import Client, Worker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--runs", required=True, help="append-only file for the records")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--queues", default="default", help="comma-separated queue names")
    args = parser.parse_args()

    fd = os.open(args.runs, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    pid = os.getpid()

    def record(event: str, job: Any) -> None:
        os.write(fd, f"{event} {job.id} {job.retries} {pid} {time.time():.3f}\n".encode())

    worker = Worker(
        Client(args.target, namespace=args.namespace),
        queues=args.queues.split(","),
        concurrency=args.concurrency,
        spare=0,
        heartbeat_interval=args.heartbeat,
    )

    @worker.task("sleep")
    async def sleep(job: Any, seconds: float = 0.0) -> None:
        record("start", job)
        await asyncio.sleep(seconds)
        record("done", job)

    @worker.task("blob")
    async def blob(job: Any, payload: str = "", result_bytes: int = 0) -> str:
        record("start", job)
        record("done", job)
        return "y" * result_bytes

    worker.run()


if __name__ == "__main__":
    main()
