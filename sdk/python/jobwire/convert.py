"""Pure conversions between Python values and jobwire's protobuf messages.

Writers check only what the wire cannot carry (a non-JSON value, an int beyond a field's range,
args that are not a list) and raise `InvalidValue` naming the field; everything else is left to
the broker. Readers never fail on a well-formed message.

`google.protobuf.Value` numbers are doubles: integers are sent exactly up to 2**53 and integral
numbers come back as `int` (so a float `1.0` reads back as `1`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, SupportsIndex

from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import NULL_VALUE, ListValue, Struct, Value
from google.protobuf.timestamp_pb2 import Timestamp

from jobwire.types import (
    DequeuedJob,
    Dispatched,
    History,
    HourlyCount,
    JobInfo,
    LockInfo,
    RepairReport,
    ScheduleInfo,
    Stats,
    WorkerInfo,
)
from jobwire.v1 import (
    admin_service_pb2,
    job_pb2,
    job_service_pb2,
    lock_pb2,
    schedule_pb2,
    worker_pb2,
)

# Largest integer a double (and so a JSON number on the wire) holds exactly.
MAX_SAFE_INTEGER = 2**53
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# Duration's range: +-10,000 years.
MAX_DURATION_SECONDS = 315_576_000_000

STATES: dict[str, job_pb2.State] = {
    "inactive": job_pb2.STATE_INACTIVE,
    "active": job_pb2.STATE_ACTIVE,
    "failed": job_pb2.STATE_FAILED,
    "finished": job_pb2.STATE_FINISHED,
}
_STATE_NAMES: dict[int, str] = {number: name for name, number in STATES.items()}

OUTCOMES: dict[str, job_service_pb2.Outcome] = {
    "finished": job_service_pb2.OUTCOME_FINISHED,
    "failed": job_service_pb2.OUTCOME_FAILED,
}


class InvalidValue(ValueError):
    """A Python value that cannot be put on the wire; `field` names where it was given."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


# --- JSON values ---------------------------------------------------------------------------


def to_value(value: object, field: str = "value") -> Value:
    """Any JSON value (None, bool, int, float, str, mapping, list/tuple) as a `Value`."""
    message = Value()
    _fill_value(message, value, field)
    return message


def to_list_value(values: object, field: str = "args") -> ListValue:
    """A list or tuple of JSON values as a `ListValue` (anything else is rejected)."""
    if not isinstance(values, (list, tuple)):
        raise InvalidValue(field, f"must be a list, not {type(values).__name__}")
    message = ListValue()
    _fill_list(message, values, field)
    return message


def to_struct(mapping: object, field: str = "notes") -> Struct:
    """A mapping with string keys and JSON values as a `Struct` (anything else is rejected)."""
    if not isinstance(mapping, Mapping):
        raise InvalidValue(field, f"must be a dict, not {type(mapping).__name__}")
    message = Struct()
    _fill_struct(message, mapping, field)
    return message


def _fill_value(target: Value, value: object, field: str) -> None:
    if value is None:
        target.null_value = NULL_VALUE
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise InvalidValue(field, f"integer {value} is beyond 2**53, not exact as JSON")
        target.number_value = float(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue(field, f"{value} is not a JSON number")
        target.number_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, Mapping):
        target.struct_value.SetInParent()
        _fill_struct(target.struct_value, value, field)
    elif isinstance(value, (list, tuple)):
        target.list_value.SetInParent()
        _fill_list(target.list_value, value, field)
    else:
        raise InvalidValue(field, f"{type(value).__name__} is not a JSON value")


def _fill_struct(target: Struct, mapping: Mapping[Any, Any], field: str) -> None:
    for key, item in mapping.items():
        if not isinstance(key, str):
            raise InvalidValue(field, f"key {key!r} is not a string")
        _fill_value(target.fields[key], item, f"{field}.{key}")


def _fill_list(target: ListValue, values: Sequence[Any], field: str) -> None:
    for index, item in enumerate(values):
        _fill_value(target.values.add(), item, f"{field}[{index}]")


def from_value(message: Value) -> Any:
    """A `Value` as a plain Python value; an unset value is None, integral numbers are ints."""
    kind = message.WhichOneof("kind")
    if kind == "number_value":
        number = message.number_value
        if number.is_integer() and abs(number) <= MAX_SAFE_INTEGER:
            return int(number)
        return number
    if kind == "string_value":
        return message.string_value
    if kind == "bool_value":
        return message.bool_value
    if kind == "struct_value":
        return from_struct(message.struct_value)
    if kind == "list_value":
        return from_list_value(message.list_value)
    return None  # null_value or unset


def from_list_value(message: ListValue) -> list[Any]:
    """A `ListValue` as a list."""
    return [from_value(item) for item in message.values]


def from_struct(message: Struct) -> dict[str, Any]:
    """A `Struct` as a dict."""
    return {key: from_value(item) for key, item in message.fields.items()}


# --- scalars --------------------------------------------------------------------------------


def to_int(value: object, field: str, bounds: tuple[int, int] = INT64) -> int:
    """An integer within a field's range (int64 unless told); bools and floats are rejected."""
    if isinstance(value, bool):
        raise InvalidValue(field, "must be an integer, not bool")
    if type(value) is int:  # the common case, without the slow Protocol isinstance check
        number = value
    elif isinstance(value, SupportsIndex):
        number = operator.index(value)
    else:
        raise InvalidValue(field, f"must be an integer, not {type(value).__name__}")
    low, high = bounds
    if not low <= number <= high:
        raise InvalidValue(field, f"{number} is out of range [{low}, {high}]")
    return number


def to_int32(value: object, field: str) -> int:
    """An integer that fits an int32 field."""
    return to_int(value, field, INT32)


def to_ids(values: object, field: str) -> list[int]:
    """A list or tuple (or other non-string iterable) of int64 ids."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidValue(field, f"must be a list of ids, not {type(values).__name__}")
    return [to_int(item, f"{field}[{index}]") for index, item in enumerate(values)]


def to_str(value: object, field: str) -> str:
    """A string field."""
    if not isinstance(value, str):
        raise InvalidValue(field, f"must be a string, not {type(value).__name__}")
    return value


def to_strs(values: object, field: str) -> list[str]:
    """A list or tuple of strings (a bare string is rejected, not split into characters)."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidValue(field, f"must be a list of strings, not {type(values).__name__}")
    return [to_str(item, f"{field}[{index}]") for index, item in enumerate(values)]


# --- time -----------------------------------------------------------------------------------


def to_duration(seconds: object, field: str) -> Duration:
    """Seconds (int or float, may be negative) as a `Duration`, to the nanosecond."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise InvalidValue(field, f"must be seconds as a number, not {type(seconds).__name__}")
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION_SECONDS:
        raise InvalidValue(field, f"{seconds} seconds is not a valid duration")
    message = Duration()
    if isinstance(seconds, int):
        message.seconds = seconds
    else:
        message.FromNanoseconds(round(seconds * 1_000_000_000))
    return message


def from_duration(message: Duration) -> float:
    """A `Duration` as float seconds."""
    return message.seconds + message.nanos / 1_000_000_000


def to_timestamp(moment: object, field: str) -> Timestamp:
    """A timezone-aware datetime as a `Timestamp` (naive datetimes are ambiguous: rejected)."""
    if not isinstance(moment, datetime):
        raise InvalidValue(field, f"must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValue(field, "must be a timezone-aware datetime")
    message = Timestamp()
    message.FromDatetime(moment.astimezone(UTC))
    return message


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_timestamp(message: Timestamp) -> datetime:
    """A `Timestamp` as a timezone-aware UTC datetime (microsecond precision).

    Arithmetic on a fixed epoch: Timestamp.ToDatetime is pure Python and, at seven timestamps a
    job, was the largest cost of reading a page of jobs.
    """
    return _EPOCH + timedelta(seconds=message.seconds, microseconds=message.nanos // 1000)


def _moment(message: Any, name: str) -> datetime | None:
    """The timestamp field `name` of `message`, or None when unset."""
    return from_timestamp(getattr(message, name)) if message.HasField(name) else None


# --- enums ----------------------------------------------------------------------------------


def to_state(name: object, field: str = "state") -> job_pb2.State:
    """A state name (inactive, active, failed, finished) as the `State` enum."""
    try:
        return STATES[name]  # type: ignore[index]
    except (KeyError, TypeError):
        raise InvalidValue(
            field, f"unknown state {name!r}; expected one of {', '.join(STATES)}"
        ) from None


def from_state(number: int) -> str:
    """A `State` enum value as its name (`unspecified` or the number for values unknown here)."""
    if number in _STATE_NAMES:
        return _STATE_NAMES[number]
    if number == job_pb2.STATE_UNSPECIFIED:
        return "unspecified"
    return str(number)


def to_outcome(name: object, field: str = "outcome") -> job_service_pb2.Outcome:
    """An outcome name (finished, failed) as the `Outcome` enum."""
    try:
        return OUTCOMES[name]  # type: ignore[index]
    except (KeyError, TypeError):
        raise InvalidValue(
            field, f"unknown outcome {name!r}; expected one of {', '.join(OUTCOMES)}"
        ) from None


# --- messages to result types ---------------------------------------------------------------


def job_info(message: job_pb2.Job) -> JobInfo:
    """A `Job` as JobInfo (worker None when 0, result None when unset)."""
    return JobInfo(
        args=from_list_value(message.args),
        attempts=message.attempts,
        children=list(message.children),
        created=_moment(message, "created"),
        delayed=_moment(message, "delayed"),
        expires=_moment(message, "expires"),
        finished=_moment(message, "finished"),
        id=message.id,
        lax=message.lax,
        notes=from_struct(message.notes),
        parents=list(message.parents),
        priority=message.priority,
        queue=message.queue,
        result=from_value(message.result) if message.HasField("result") else None,
        retried=_moment(message, "retried"),
        retries=message.retries,
        started=_moment(message, "started"),
        state=from_state(message.state),
        task=message.task,
        time=_moment(message, "time"),
        worker=message.worker or None,
    )


def dequeued_job(message: job_pb2.DequeuedJob) -> DequeuedJob:
    """A `DequeuedJob` message as DequeuedJob."""
    return DequeuedJob(
        id=message.id,
        args=from_list_value(message.args),
        retries=message.retries,
        task=message.task,
        queue=message.queue,
        priority=message.priority,
        attempts=message.attempts,
        notes=from_struct(message.notes),
        parents=list(message.parents),
        lease=message.lease,
        traceparent=message.traceparent,
    )


def stats(message: admin_service_pb2.StatsResponse) -> Stats:
    """A `StatsResponse` as Stats (uptime in float seconds)."""
    return Stats(
        active_jobs=message.active_jobs,
        active_locks=message.active_locks,
        active_workers=message.active_workers,
        delayed_jobs=message.delayed_jobs,
        enqueued_jobs=message.enqueued_jobs,
        failed_jobs=message.failed_jobs,
        finished_jobs=message.finished_jobs,
        inactive_jobs=message.inactive_jobs,
        inactive_schedules=message.inactive_schedules,
        inactive_workers=message.inactive_workers,
        schedules=message.schedules,
        uptime=from_duration(message.uptime),
        workers=message.workers,
    )


def history(message: admin_service_pb2.HistoryResponse) -> History:
    """A `HistoryResponse` as History."""
    return History(
        daily=[
            HourlyCount(
                epoch=_moment(hour, "epoch"),
                finished_jobs=hour.finished_jobs,
                failed_jobs=hour.failed_jobs,
            )
            for hour in message.daily
        ]
    )


def repair_report(message: admin_service_pb2.RepairResponse) -> RepairReport:
    """A `RepairResponse` as RepairReport."""
    return RepairReport(
        missing_workers=message.missing_workers,
        old_jobs=message.old_jobs,
        expired_jobs=message.expired_jobs,
        abandoned_jobs=message.abandoned_jobs,
        stuck_jobs=message.stuck_jobs,
    )


def worker_info(message: worker_pb2.Worker) -> WorkerInfo:
    """A `Worker` as WorkerInfo."""
    return WorkerInfo(
        id=message.id,
        host=message.host,
        pid=message.pid,
        started=_moment(message, "started"),
        notified=_moment(message, "notified"),
        status=from_struct(message.status),
        jobs=list(message.jobs),
    )


def lock_info(message: lock_pb2.Lock) -> LockInfo:
    """A `Lock` as LockInfo."""
    return LockInfo(id=message.id, name=message.name, expires=_moment(message, "expires"))


def schedule_info(message: schedule_pb2.Schedule) -> ScheduleInfo:
    """A `Schedule` as ScheduleInfo (expire None when unset, last_job None before a firing)."""
    return ScheduleInfo(
        id=message.id,
        args=from_list_value(message.args),
        attempts=message.attempts,
        created=_moment(message, "created"),
        cron=message.cron,
        expire=from_duration(message.expire) if message.HasField("expire") else None,
        last_job=message.last_job or None,
        last_run=_moment(message, "last_run"),
        lax=message.lax,
        name=message.name,
        next_run=_moment(message, "next_run"),
        notes=from_struct(message.notes),
        paused=message.paused,
        priority=message.priority,
        queue=message.queue,
        task=message.task,
    )


def dispatched(message: schedule_pb2.Dispatch) -> Dispatched:
    """A `Dispatch` as Dispatched."""
    return Dispatched(id=message.id, name=message.name, job=message.job)
