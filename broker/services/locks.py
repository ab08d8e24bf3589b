"""LockService: Minion's named locks with holder limits (lock, unlock, list_locks)."""

from __future__ import annotations

import grpc

from broker import convert, limits, validate
from broker.errors import rpc
from broker.services.context import ServiceContext
from broker.store import LockRow
from jobwire.v1 import lock_pb2, lock_service_pb2_grpc
from jobwire.v1 import lock_service_pb2 as pb


def lock_message(row: LockRow) -> lock_pb2.Lock:
    return lock_pb2.Lock(id=row.id, name=row.name, expires=convert.timestamp(row.expires))


class LockServicer(lock_service_pb2_grpc.LockServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    @rpc
    async def AcquireLock(
        self, request: pb.AcquireLockRequest, context: grpc.aio.ServicerContext
    ) -> pb.AcquireLockResponse:
        """A duration <= 0 (negative too, as in Minion) only checks; limit 0 means 1."""
        namespace = self.ctx.namespace(request.namespace)
        name = validate.name(request.name, "name")
        limit = validate.bounded(request.limit, "limit", limits.MAX_CONCURRENCY) or 1
        duration = validate.seconds(request.duration, "duration", minimum=-limits.MAX_DURATION)
        acquired = await self.store.acquire_lock(namespace, name, duration, limit)
        return pb.AcquireLockResponse(acquired=acquired)

    @rpc
    async def ReleaseLock(
        self, request: pb.ReleaseLockRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseLockResponse:
        namespace = self.ctx.namespace(request.namespace)
        released = await self.store.release_lock(namespace, validate.name(request.name, "name"))
        return pb.ReleaseLockResponse(released=released)

    @rpc
    async def ListLocks(
        self, request: pb.ListLocksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListLocksResponse:
        namespace = self.ctx.namespace(request.namespace)
        offset, limit = validate.page(
            request.offset, request.limit if request.HasField("limit") else None
        )
        names = validate.names(request.names, "names")
        rows, total = await self.store.list_locks(namespace, offset, limit, names=names)
        return pb.ListLocksResponse(locks=[lock_message(r) for r in rows], total=total)
