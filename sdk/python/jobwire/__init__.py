"""jobwire: the Python SDK of the jobwire gRPC job-queue broker (Minion's semantics on Redis).

    from jobwire import Client

    with Client("127.0.0.1:50051") as client:
        job_id = client.enqueue("add", [2, 3])

Every failed call raises `JobwireError`; expected outcomes (no job ready, lock busy, stale
retries) are return values.
"""

from jobwire.aio import AsyncClient
from jobwire.client import Client
from jobwire.errors import JobwireError
from jobwire.types import (
    DequeuedJob,
    Dispatched,
    Guard,
    History,
    HourlyCount,
    JobInfo,
    LockInfo,
    Page,
    Registration,
    RepairReport,
    ScheduleInfo,
    Stats,
    WorkerInfo,
)
from jobwire.worker import Worker

__all__ = [
    "AsyncClient",
    "Client",
    "DequeuedJob",
    "Dispatched",
    "Guard",
    "History",
    "HourlyCount",
    "JobInfo",
    "JobwireError",
    "LockInfo",
    "Page",
    "Registration",
    "RepairReport",
    "ScheduleInfo",
    "Stats",
    "Worker",
    "WorkerInfo",
]
