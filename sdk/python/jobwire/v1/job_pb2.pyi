import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_UNSPECIFIED: _ClassVar[State]
    STATE_INACTIVE: _ClassVar[State]
    STATE_ACTIVE: _ClassVar[State]
    STATE_FAILED: _ClassVar[State]
    STATE_FINISHED: _ClassVar[State]
STATE_UNSPECIFIED: State
STATE_INACTIVE: State
STATE_ACTIVE: State
STATE_FAILED: State
STATE_FINISHED: State

class Job(_message.Message):
    __slots__ = ("id", "task", "args", "attempts", "children", "created", "delayed", "expires", "finished", "lax", "notes", "parents", "priority", "queue", "result", "retried", "retries", "started", "state", "time", "worker")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DELAYED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    LAX_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    id: int
    task: str
    args: _struct_pb2.ListValue
    attempts: int
    children: _containers.RepeatedScalarFieldContainer[int]
    created: _timestamp_pb2.Timestamp
    delayed: _timestamp_pb2.Timestamp
    expires: _timestamp_pb2.Timestamp
    finished: _timestamp_pb2.Timestamp
    lax: bool
    notes: _struct_pb2.Struct
    parents: _containers.RepeatedScalarFieldContainer[int]
    priority: int
    queue: str
    result: _struct_pb2.Value
    retried: _timestamp_pb2.Timestamp
    retries: int
    started: _timestamp_pb2.Timestamp
    state: State
    time: _timestamp_pb2.Timestamp
    worker: int
    def __init__(self, id: _Optional[int] = ..., task: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., attempts: _Optional[int] = ..., children: _Optional[_Iterable[int]] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delayed: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lax: _Optional[bool] = ..., notes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., parents: _Optional[_Iterable[int]] = ..., priority: _Optional[int] = ..., queue: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., retried: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retries: _Optional[int] = ..., started: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[State, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., worker: _Optional[int] = ...) -> None: ...

class DequeuedJob(_message.Message):
    __slots__ = ("id", "task", "args", "retries", "queue", "priority", "attempts", "notes", "parents", "lease", "traceparent")
    ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    id: int
    task: str
    args: _struct_pb2.ListValue
    retries: int
    queue: str
    priority: int
    attempts: int
    notes: _struct_pb2.Struct
    parents: _containers.RepeatedScalarFieldContainer[int]
    lease: int
    traceparent: str
    def __init__(self, id: _Optional[int] = ..., task: _Optional[str] = ..., args: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., retries: _Optional[int] = ..., queue: _Optional[str] = ..., priority: _Optional[int] = ..., attempts: _Optional[int] = ..., notes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., parents: _Optional[_Iterable[int]] = ..., lease: _Optional[int] = ..., traceparent: _Optional[str] = ...) -> None: ...

class JobIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, ids: _Optional[_Iterable[int]] = ...) -> None: ...
