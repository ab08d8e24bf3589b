"""LockService servicer. Until its issue lands every RPC answers UNIMPLEMENTED (inherited)."""

from __future__ import annotations

from broker.services.context import ServiceContext
from jobwire.v1 import lock_service_pb2_grpc


class LockServicer(lock_service_pb2_grpc.LockServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
