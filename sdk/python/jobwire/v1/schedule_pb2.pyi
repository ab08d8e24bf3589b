import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Schedule(_message.Message):
    __slots__ = ("id", "args", "attempts", "created", "cron", "expire", "last_job", "last_run", "lax", "name", "next_run", "notes", "paused", "priority", "queue", "task")
    ID_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_FIELD_NUMBER: _ClassVar[int]
    LAST_RUN_FIELD_NUMBER: _ClassVar[int]
    LAX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    id: int
    args: _struct_pb2.ListValue
    attempts: int
    created: _timestamp_pb2.Timestamp
    cron: str
    expire: _duration_pb2.Duration
    last_job: int
    last_run: _timestamp_pb2.Timestamp
    lax: bool
    name: str
    next_run: _timestamp_pb2.Timestamp
    notes: _struct_pb2.Struct
    paused: bool
    priority: int
    queue: str
    task: str
    def __init__(self, id: _Optional[int] = ..., args: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., attempts: _Optional[int] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cron: _Optional[str] = ..., expire: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., last_job: _Optional[int] = ..., last_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lax: _Optional[bool] = ..., name: _Optional[str] = ..., next_run: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., notes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., paused: _Optional[bool] = ..., priority: _Optional[int] = ..., queue: _Optional[str] = ..., task: _Optional[str] = ...) -> None: ...

class Dispatch(_message.Message):
    __slots__ = ("id", "name", "job")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    id: int
    name: str
    job: int
    def __init__(self, id: _Optional[int] = ..., name: _Optional[str] = ..., job: _Optional[int] = ...) -> None: ...
