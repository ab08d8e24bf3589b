"""jobwire: the Python SDK of the jobwire gRPC job-queue broker (Minion's semantics on Redis).

    from jobwire import Client

    with Client("127.0.0.1:50051") as client:
        job_id = client.enqueue("add", [2, 3])

Every failed call raises a `JobwireError`, of the subclass for its status code (NotFoundError,
InvalidArgumentError, DeadlineExceededError, ...); expected outcomes (no job ready, lock busy, stale
retries) are return values.
"""

from jobwire.aio import AsyncClient
from jobwire.client import Client
from jobwire.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    JobwireError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
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
    "DeadlineExceededError",
    "DequeuedJob",
    "Dispatched",
    "FailedPreconditionError",
    "Guard",
    "History",
    "HourlyCount",
    "InvalidArgumentError",
    "JobInfo",
    "JobwireError",
    "LockInfo",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "Registration",
    "RepairReport",
    "ResourceExhaustedError",
    "ScheduleInfo",
    "Stats",
    "UnauthenticatedError",
    "UnavailableError",
    "Worker",
    "WorkerInfo",
]
