import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatsRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("active_jobs", "active_locks", "active_workers", "delayed_jobs", "enqueued_jobs", "failed_jobs", "finished_jobs", "inactive_jobs", "inactive_schedules", "inactive_workers", "schedules", "uptime", "workers")
    ACTIVE_JOBS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_LOCKS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    DELAYED_JOBS_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_JOBS_FIELD_NUMBER: _ClassVar[int]
    FAILED_JOBS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_JOBS_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_JOBS_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    active_jobs: int
    active_locks: int
    active_workers: int
    delayed_jobs: int
    enqueued_jobs: int
    failed_jobs: int
    finished_jobs: int
    inactive_jobs: int
    inactive_schedules: int
    inactive_workers: int
    schedules: int
    uptime: _duration_pb2.Duration
    workers: int
    def __init__(self, active_jobs: _Optional[int] = ..., active_locks: _Optional[int] = ..., active_workers: _Optional[int] = ..., delayed_jobs: _Optional[int] = ..., enqueued_jobs: _Optional[int] = ..., failed_jobs: _Optional[int] = ..., finished_jobs: _Optional[int] = ..., inactive_jobs: _Optional[int] = ..., inactive_schedules: _Optional[int] = ..., inactive_workers: _Optional[int] = ..., schedules: _Optional[int] = ..., uptime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., workers: _Optional[int] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class HourlyCount(_message.Message):
    __slots__ = ("epoch", "finished_jobs", "failed_jobs")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    FINISHED_JOBS_FIELD_NUMBER: _ClassVar[int]
    FAILED_JOBS_FIELD_NUMBER: _ClassVar[int]
    epoch: _timestamp_pb2.Timestamp
    finished_jobs: int
    failed_jobs: int
    def __init__(self, epoch: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_jobs: _Optional[int] = ..., failed_jobs: _Optional[int] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("daily",)
    DAILY_FIELD_NUMBER: _ClassVar[int]
    daily: _containers.RepeatedCompositeFieldContainer[HourlyCount]
    def __init__(self, daily: _Optional[_Iterable[_Union[HourlyCount, _Mapping]]] = ...) -> None: ...

class RepairRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class RepairResponse(_message.Message):
    __slots__ = ("missing_workers", "old_jobs", "expired_jobs", "abandoned_jobs", "stuck_jobs")
    MISSING_WORKERS_FIELD_NUMBER: _ClassVar[int]
    OLD_JOBS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_JOBS_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_JOBS_FIELD_NUMBER: _ClassVar[int]
    STUCK_JOBS_FIELD_NUMBER: _ClassVar[int]
    missing_workers: int
    old_jobs: int
    expired_jobs: int
    abandoned_jobs: int
    stuck_jobs: int
    def __init__(self, missing_workers: _Optional[int] = ..., old_jobs: _Optional[int] = ..., expired_jobs: _Optional[int] = ..., abandoned_jobs: _Optional[int] = ..., stuck_jobs: _Optional[int] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ("namespace", "all", "locks")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    LOCKS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    all: bool
    locks: bool
    def __init__(self, namespace: _Optional[str] = ..., all: _Optional[bool] = ..., locks: _Optional[bool] = ...) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
