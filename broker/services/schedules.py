"""ScheduleService: cron schedules (Minion's schedule, unschedule, pause/resume, list, dispatch)."""

from __future__ import annotations

import grpc

from broker import convert, limits, validate
from broker.cron import CronError, parse_cron
from broker.errors import InvalidArgument, rpc
from broker.services.context import ServiceContext
from broker.store import JobSpec, ScheduleRow
from jobwire.v1 import schedule_pb2, schedule_service_pb2_grpc
from jobwire.v1 import schedule_service_pb2 as pb


class ScheduleServicer(schedule_service_pb2_grpc.ScheduleServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    @rpc
    async def UpsertSchedule(
        self, request: pb.UpsertScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpsertScheduleResponse:
        namespace = self.ctx.namespace(request.namespace)
        name = validate.name(request.name, "name")
        _cron(validate.text(request.cron, "cron", limits.MAX_CRON))
        payload = self.ctx.payload
        spec = JobSpec(
            task=validate.name(request.task, "task"),
            args=payload.list(request.args, "args"),
            attempts=validate.attempts(request.attempts) if request.HasField("attempts") else 1,
            expire=validate.optional_seconds(request, "expire"),
            lax=request.lax,
            notes=payload.notes(request.notes, "notes"),
            priority=request.priority,
            queue=validate.name(request.queue, "queue", default="default"),
        )
        try:
            schedule_id = await self.store.upsert_schedule(namespace, name, request.cron, spec)
        except CronError as error:  # no match within Minion's horizon; nothing was written
            raise InvalidArgument("cron", str(error)) from None
        return pb.UpsertScheduleResponse(id=schedule_id)

    @rpc
    async def DeleteSchedule(
        self, request: pb.DeleteScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteScheduleResponse:
        namespace = self.ctx.namespace(request.namespace)
        return pb.DeleteScheduleResponse(
            deleted=await self.store.delete_schedule(namespace, validate.name(request.name, "name"))
        )

    @rpc
    async def PauseSchedule(
        self, request: pb.PauseScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.PauseScheduleResponse:
        namespace = self.ctx.namespace(request.namespace)
        return pb.PauseScheduleResponse(
            found=await self.store.pause_schedule(namespace, validate.name(request.name, "name"))
        )

    @rpc
    async def ResumeSchedule(
        self, request: pb.ResumeScheduleRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResumeScheduleResponse:
        namespace = self.ctx.namespace(request.namespace)
        return pb.ResumeScheduleResponse(
            found=await self.store.resume_schedule(namespace, validate.name(request.name, "name"))
        )

    @rpc
    async def ListSchedules(
        self, request: pb.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListSchedulesResponse:
        namespace = self.ctx.namespace(request.namespace)
        offset, limit = validate.page(
            request.offset, request.limit if request.HasField("limit") else None
        )
        rows, total = await self.store.list_schedules(
            namespace,
            offset,
            limit,
            before=validate.optional_ident(request, "before"),
            ids=validate.idents(request.ids, "ids", limits.MAX_FILTER_IDS),
            names=validate.names(request.names, "names"),
        )
        return pb.ListSchedulesResponse(schedules=[_schedule(row) for row in rows], total=total)

    @rpc
    async def DispatchSchedules(
        self, request: pb.DispatchSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> pb.DispatchSchedulesResponse:
        fired = await self.store.dispatch_schedules(self.ctx.namespace(request.namespace))
        return pb.DispatchSchedulesResponse(
            dispatched=[schedule_pb2.Dispatch(id=d.id, name=d.name, job=d.job) for d in fired]
        )


def _cron(expr: str) -> None:
    """Minion's parse_cron: an invalid expression is INVALID_ARGUMENT with Minion's message."""
    try:
        parse_cron(expr)
    except CronError as error:
        raise InvalidArgument("cron", str(error)) from None


def _schedule(row: ScheduleRow) -> schedule_pb2.Schedule:
    message = schedule_pb2.Schedule(
        id=row.id,
        args=convert.list_value(row.args),
        attempts=row.attempts,
        created=convert.timestamp(row.created),
        cron=row.cron,
        last_job=row.last_job or 0,
        lax=row.lax,
        name=row.name,
        next_run=convert.timestamp(row.next_run),
        notes=convert.notes_struct(row.notes),
        paused=row.paused,
        priority=row.priority,
        queue=row.queue,
        task=row.task,
    )
    if row.expire is not None:
        message.expire.CopyFrom(convert.duration(row.expire))
    if row.last_run is not None:
        message.last_run.CopyFrom(convert.timestamp(row.last_run))
    return message
