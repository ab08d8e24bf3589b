import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from jobwire.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_FINISHED: _ClassVar[Outcome]
    OUTCOME_FAILED: _ClassVar[Outcome]
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_FINISHED: Outcome
OUTCOME_FAILED: Outcome

class EnqueueRequest(_message.Message):
    __slots__ = ("namespace", "task", "args", "attempts", "delay", "expire", "lax", "notes", "parents", "priority", "queue")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_FIELD_NUMBER: _ClassVar[int]
    LAX_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    task: str
    args: _struct_pb2.ListValue
    attempts: int
    delay: _duration_pb2.Duration
    expire: _duration_pb2.Duration
    lax: bool
    notes: _struct_pb2.Struct
    parents: _containers.RepeatedScalarFieldContainer[int]
    priority: int
    queue: str
    def __init__(self, namespace: _Optional[str] = ..., task: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., attempts: _Optional[int] = ..., delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., expire: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., lax: _Optional[bool] = ..., notes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., parents: _Optional[_Iterable[int]] = ..., priority: _Optional[int] = ..., queue: _Optional[str] = ...) -> None: ...

class EnqueueResponse(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class BatchEnqueueRequest(_message.Message):
    __slots__ = ("namespace", "requests")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    requests: _containers.RepeatedCompositeFieldContainer[EnqueueRequest]
    def __init__(self, namespace: _Optional[str] = ..., requests: _Optional[_Iterable[_Union[EnqueueRequest, _Mapping]]] = ...) -> None: ...

class BatchEnqueueResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[_Iterable[int]] = ...) -> None: ...

class DequeueRequest(_message.Message):
    __slots__ = ("namespace", "worker_id", "wait", "id", "min_priority", "queues", "tasks", "count")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MIN_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    worker_id: int
    wait: _duration_pb2.Duration
    id: int
    min_priority: int
    queues: _containers.RepeatedScalarFieldContainer[str]
    tasks: _containers.RepeatedScalarFieldContainer[str]
    count: int
    def __init__(self, namespace: _Optional[str] = ..., worker_id: _Optional[int] = ..., wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., id: _Optional[int] = ..., min_priority: _Optional[int] = ..., queues: _Optional[_Iterable[str]] = ..., tasks: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ...) -> None: ...

class DequeueResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.DequeuedJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.DequeuedJob, _Mapping]]] = ...) -> None: ...

class FinishJobRequest(_message.Message):
    __slots__ = ("namespace", "id", "retries", "result", "lease")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: int
    retries: int
    result: _struct_pb2.Value
    lease: int
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[int] = ..., retries: _Optional[int] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., lease: _Optional[int] = ...) -> None: ...

class FinishJobResponse(_message.Message):
    __slots__ = ("finished",)
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    finished: bool
    def __init__(self, finished: _Optional[bool] = ...) -> None: ...

class FailJobRequest(_message.Message):
    __slots__ = ("namespace", "id", "retries", "result", "lease")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: int
    retries: int
    result: _struct_pb2.Value
    lease: int
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[int] = ..., retries: _Optional[int] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., lease: _Optional[int] = ...) -> None: ...

class FailJobResponse(_message.Message):
    __slots__ = ("failed",)
    FAILED_FIELD_NUMBER: _ClassVar[int]
    failed: bool
    def __init__(self, failed: _Optional[bool] = ...) -> None: ...

class Completion(_message.Message):
    __slots__ = ("id", "retries", "outcome", "result", "lease")
    ID_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    id: int
    retries: int
    outcome: Outcome
    result: _struct_pb2.Value
    lease: int
    def __init__(self, id: _Optional[int] = ..., retries: _Optional[int] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., lease: _Optional[int] = ...) -> None: ...

class CompleteJobsRequest(_message.Message):
    __slots__ = ("namespace", "completions")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    completions: _containers.RepeatedCompositeFieldContainer[Completion]
    def __init__(self, namespace: _Optional[str] = ..., completions: _Optional[_Iterable[_Union[Completion, _Mapping]]] = ...) -> None: ...

class CompleteJobsResponse(_message.Message):
    __slots__ = ("applied",)
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    applied: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, applied: _Optional[_Iterable[bool]] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("namespace", "id", "retries", "attempts", "delay", "expire", "lax", "parents", "priority", "queue", "lease")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_FIELD_NUMBER: _ClassVar[int]
    LAX_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: int
    retries: int
    attempts: int
    delay: _duration_pb2.Duration
    expire: _duration_pb2.Duration
    lax: bool
    parents: _job_pb2.JobIds
    priority: int
    queue: str
    lease: int
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[int] = ..., retries: _Optional[int] = ..., attempts: _Optional[int] = ..., delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., expire: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., lax: _Optional[bool] = ..., parents: _Optional[_Union[_job_pb2.JobIds, _Mapping]] = ..., priority: _Optional[int] = ..., queue: _Optional[str] = ..., lease: _Optional[int] = ...) -> None: ...

class RetryJobResponse(_message.Message):
    __slots__ = ("retried",)
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    retried: bool
    def __init__(self, retried: _Optional[bool] = ...) -> None: ...

class RemoveJobRequest(_message.Message):
    __slots__ = ("namespace", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: int
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[int] = ...) -> None: ...

class RemoveJobResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: bool
    def __init__(self, removed: _Optional[bool] = ...) -> None: ...

class NoteJobRequest(_message.Message):
    __slots__ = ("namespace", "id", "merge")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: int
    merge: _struct_pb2.Struct
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[int] = ..., merge: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class NoteJobResponse(_message.Message):
    __slots__ = ("updated",)
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    updated: bool
    def __init__(self, updated: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("namespace", "id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    id: int
    def __init__(self, namespace: _Optional[str] = ..., id: _Optional[int] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _job_pb2.Job
    def __init__(self, job: _Optional[_Union[_job_pb2.Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("namespace", "offset", "limit", "before", "ids", "notes", "queues", "states", "tasks")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    offset: int
    limit: int
    before: int
    ids: _containers.RepeatedScalarFieldContainer[int]
    notes: _containers.RepeatedScalarFieldContainer[str]
    queues: _containers.RepeatedScalarFieldContainer[str]
    states: _containers.RepeatedScalarFieldContainer[_job_pb2.State]
    tasks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, namespace: _Optional[str] = ..., offset: _Optional[int] = ..., limit: _Optional[int] = ..., before: _Optional[int] = ..., ids: _Optional[_Iterable[int]] = ..., notes: _Optional[_Iterable[str]] = ..., queues: _Optional[_Iterable[str]] = ..., states: _Optional[_Iterable[_Union[_job_pb2.State, str]]] = ..., tasks: _Optional[_Iterable[str]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "total")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    total: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...
