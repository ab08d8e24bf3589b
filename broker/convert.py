"""Store rows to protobuf messages (the wire side of the services)."""

from __future__ import annotations

import json
import math

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from broker import wire
from broker.store import Dequeued, JobRow
from jobwire.v1 import job_pb2

STATES = {
    "inactive": job_pb2.STATE_INACTIVE,
    "active": job_pb2.STATE_ACTIVE,
    "failed": job_pb2.STATE_FAILED,
    "finished": job_pb2.STATE_FINISHED,
}
STATE_NAMES = {number: name for name, number in STATES.items()}


# The range a Timestamp may hold (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z), and a
# Duration's (about 10000 years either way), in microseconds.
_TIMESTAMP_MICROS = (-62_135_596_800 * 10**6, 253_402_300_800 * 10**6 - 1)
_DURATION_MICROS = (-315_576_000_000 * 10**6 + 1, 315_576_000_000 * 10**6 - 1)


def _micros(seconds: float, bounds: tuple[int, int]) -> tuple[int, int]:
    """Whole seconds and nanoseconds (to the microsecond) of `seconds` clamped to `bounds`, so
    a stored value out of range (or NaN, read as 0) can never make a read fail."""
    scaled = 0.0 if math.isnan(seconds) else seconds * 1e6
    low, high = bounds
    micros = low if scaled <= low else high if scaled >= high else round(scaled)
    whole, fraction = divmod(micros, 1_000_000)
    return whole, fraction * 1000


def timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    whole, nanos = _micros(epoch, _TIMESTAMP_MICROS)
    return timestamp_pb2.Timestamp(seconds=whole, nanos=nanos)


def duration(seconds: float) -> duration_pb2.Duration:
    whole, nanos = _micros(seconds, _DURATION_MICROS)
    if whole < 0 and nanos:  # a Duration's nanos take the sign of its seconds
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return duration_pb2.Duration(seconds=whole, nanos=nanos)


def list_value(text: str) -> struct_pb2.ListValue:
    return wire.to_list(json.loads(text))


def notes_struct(notes: dict[str, str]) -> struct_pb2.Struct:
    return wire.to_struct({key: json.loads(text) for key, text in notes.items()})


_TIMES = ("created", "delayed", "expires", "finished", "retried", "started")


def jobs(rows: list[JobRow]) -> list[job_pb2.Job]:
    """A page of jobs. Timestamps are built once per distinct value: `time` is the same for the
    whole page and `delayed` usually equals `created`."""
    stamps: dict[str, timestamp_pb2.Timestamp] = {}
    return [job(row, stamps) for row in rows]


def job(row: JobRow, stamps: dict[str, timestamp_pb2.Timestamp] | None = None) -> job_pb2.Job:
    # Hot path of ListJobs (100 rows a page): every field goes in through the constructor, and
    # empty notes, parents and children skip their conversions.
    if stamps is None:
        stamps = {}

    def stamp(text: str) -> timestamp_pb2.Timestamp:
        message = stamps.get(text)
        if message is None:
            message = stamps[text] = timestamp(float(text))
        return message

    f = row.fields
    fields: dict[str, object] = {
        "id": row.id,
        "task": f["task"],
        "args": list_value(f["args"]),
        "attempts": int(f["attempts"]),
        "lax": f.get("lax") == "1",
        "priority": int(f["priority"]),
        "queue": f["queue"],
        "retries": int(f["retries"]),
        "state": STATES[f["state"]],
        "time": stamp(repr(row.time)),
    }
    if row.children:
        fields["children"] = row.children
    if row.notes:
        fields["notes"] = notes_struct(row.notes)
    parents = f["parents"]
    if parents != "[]":
        fields["parents"] = json.loads(parents)
    worker = f.get("worker")
    if worker:
        fields["worker"] = int(worker)
    for name in _TIMES:
        text = f.get(name)
        if text:
            fields[name] = stamp(text)
    result = f.get("result")
    if result is not None:
        fields["result"] = wire.to_value(json.loads(result))
    return job_pb2.Job(**fields)  # type: ignore[arg-type]


def dequeued(item: Dequeued) -> job_pb2.DequeuedJob:
    return job_pb2.DequeuedJob(
        id=item.id,
        task=item.task,
        args=list_value(item.args),
        retries=item.retries,
        queue=item.queue,
        priority=item.priority,
        attempts=item.attempts,
        notes=notes_struct(item.notes),
        parents=json.loads(item.parents),
        lease=item.lease,
        traceparent=item.trace,
    )
