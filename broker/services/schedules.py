"""ScheduleService servicer. Until its issue lands every RPC answers UNIMPLEMENTED (inherited)."""

from __future__ import annotations

from broker.services.context import ServiceContext
from jobwire.v1 import schedule_service_pb2_grpc


class ScheduleServicer(schedule_service_pb2_grpc.ScheduleServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
