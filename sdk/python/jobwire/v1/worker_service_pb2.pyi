import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jobwire.v1 import job_pb2 as _job_pb2
from jobwire.v1 import worker_pb2 as _worker_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterWorkerRequest(_message.Message):
    __slots__ = ("namespace", "id", "status", "host", "pid", "running", "lease_duration")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    LEASE_DURATION_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: int
    status: _struct_pb2.Struct
    host: str
    pid: int
    running: _job_pb2.JobIds
    lease_duration: _duration_pb2.Duration
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[int] = ..., status: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., host: _Optional[str] = ..., pid: _Optional[int] = ..., running: _Optional[_Union[_job_pb2.JobIds, _Mapping]] = ..., lease_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RegisterWorkerResponse(_message.Message):
    __slots__ = ("id", "created", "lost")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    LOST_FIELD_NUMBER: _ClassVar[int]
    id: int
    created: bool
    lost: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, id: _Optional[int] = ..., created: _Optional[bool] = ..., lost: _Optional[_Iterable[int]] = ...) -> None: ...

class UnregisterWorkerRequest(_message.Message):
    __slots__ = ("namespace", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: int
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[int] = ...) -> None: ...

class UnregisterWorkerResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ("namespace", "offset", "limit", "before", "ids")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    offset: int
    limit: int
    before: int
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, namespace: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ..., before: _Optional[int] = ..., ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers", "total")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[_worker_pb2.Worker]
    total: int
    def __init__(self, workers: _Optional[_Iterable[_Union[_worker_pb2.Worker, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...

class BroadcastRequest(_message.Message):
    __slots__ = ("namespace", "command", "args", "ids")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    command: str
    args: _struct_pb2.ListValue
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, namespace: _Optional[str] = ..., command: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., ids: _Optional[_Iterable[int]] = ...) -> None: ...

class BroadcastResponse(_message.Message):
    __slots__ = ("delivered",)
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    delivered: bool
    def __init__(self, delivered: _Optional[bool] = ...) -> None: ...

class ReceiveRequest(_message.Message):
    __slots__ = ("namespace", "worker_id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    worker_id: int
    def __init__(self, namespace: _Optional[str] = ..., worker_id: _Optional[int] = ...) -> None: ...

class ReceiveResponse(_message.Message):
    __slots__ = ("commands",)
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    commands: _containers.RepeatedCompositeFieldContainer[_struct_pb2.ListValue]
    def __init__(self, commands: _Optional[_Iterable[_Union[_struct_pb2.ListValue, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("namespace", "worker_id", "queues", "tasks", "concurrency", "min_priority", "running", "limits", "spare", "spare_min_priority")
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MIN_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SPARE_FIELD_NUMBER: _ClassVar[int]
    SPARE_MIN_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    worker_id: int
    queues: _containers.RepeatedScalarFieldContainer[str]
    tasks: _containers.RepeatedScalarFieldContainer[str]
    concurrency: int
    min_priority: int
    running: _containers.RepeatedScalarFieldContainer[int]
    limits: _containers.ScalarMap[str, int]
    spare: int
    spare_min_priority: int
    def __init__(self, namespace: _Optional[str] = ..., worker_id: _Optional[int] = ..., queues: _Optional[_Iterable[str]] = ..., tasks: _Optional[_Iterable[str]] = ..., concurrency: _Optional[int] = ..., min_priority: _Optional[int] = ..., running: _Optional[_Iterable[int]] = ..., limits: _Optional[_Mapping[str, int]] = ..., spare: _Optional[int] = ..., spare_min_priority: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("jobs", "commands", "time")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.DequeuedJob]
    commands: _containers.RepeatedCompositeFieldContainer[_struct_pb2.ListValue]
    time: _timestamp_pb2.Timestamp
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.DequeuedJob, _Mapping]]] = ..., commands: _Optional[_Iterable[_Union[_struct_pb2.ListValue, _Mapping]]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
