"""Store rows to protobuf messages (the wire side of the services)."""

from __future__ import annotations

import json

from google.protobuf import struct_pb2, timestamp_pb2

from broker import values
from broker.store import Dequeued, JobRow
from jobwire.v1 import job_pb2

STATES = {
    "inactive": job_pb2.STATE_INACTIVE,
    "active": job_pb2.STATE_ACTIVE,
    "failed": job_pb2.STATE_FAILED,
    "finished": job_pb2.STATE_FINISHED,
}
STATE_NAMES = {number: name for name, number in STATES.items()}


def timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    seconds = int(epoch // 1)
    return timestamp_pb2.Timestamp(
        seconds=seconds, nanos=int(round((epoch - seconds) * 1e6)) * 1000
    )


def set_time(message: timestamp_pb2.Timestamp, text: str | None) -> None:
    if text:
        message.CopyFrom(timestamp(float(text)))


def list_value(text: str) -> struct_pb2.ListValue:
    return values.to_list(json.loads(text))


def notes_struct(notes: dict[str, str]) -> struct_pb2.Struct:
    return values.to_struct({key: json.loads(text) for key, text in notes.items()})


def job(row: JobRow) -> job_pb2.Job:
    f = row.fields
    message = job_pb2.Job(
        id=row.id,
        task=f["task"],
        args=list_value(f["args"]),
        attempts=int(f["attempts"]),
        children=row.children,
        lax=f.get("lax") == "1",
        notes=notes_struct(row.notes),
        parents=json.loads(f["parents"]),
        priority=int(f["priority"]),
        queue=f["queue"],
        retries=int(f["retries"]),
        state=STATES[f["state"]],
        worker=int(f.get("worker") or 0),
    )
    for name in ("created", "delayed", "expires", "finished", "retried", "started"):
        set_time(getattr(message, name), f.get(name))
    message.time.CopyFrom(timestamp(row.time))
    if "result" in f:
        message.result.CopyFrom(values.to_value(json.loads(f["result"])))
    return message


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
    )
