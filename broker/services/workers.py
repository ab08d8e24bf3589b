"""WorkerService: registration and heartbeats, listing, remote control (broadcast/receive), and
the Subscribe stream (implemented in broker/services/streams.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import grpc

from broker import convert, limits, validate, values, wire
from broker.errors import rpc, stream_rpc
from broker.services import streams
from broker.services.context import ServiceContext
from broker.store import WorkerRow
from jobwire.v1 import worker_pb2, worker_service_pb2_grpc
from jobwire.v1 import worker_service_pb2 as pb

log = logging.getLogger("jobwire.workers")

# Longest lease a worker may ask for: a day (a worker that heartbeats less often than that is
# better served by the default, Minion's missing_after).
MAX_LEASE = 86400.0


def worker_message(row: WorkerRow) -> worker_pb2.Worker:
    message = worker_pb2.Worker(
        id=row.id,
        host=row.host,
        pid=row.pid,
        started=convert.timestamp(row.started),
        notified=convert.timestamp(row.notified),
        jobs=row.jobs,
    )
    message.status.CopyFrom(wire.to_struct(json.loads(row.status)))
    return message


class WorkerServicer(worker_service_pb2_grpc.WorkerServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    @rpc
    async def RegisterWorker(
        self, request: pb.RegisterWorkerRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterWorkerResponse:
        namespace = self.ctx.namespace(request.namespace)
        wid = validate.optional_ident(request, "id", limits.MAX_CHOSEN_WORKER_ID)
        host = validate.text(request.host, "host")
        status = self.ctx.payload.text(
            values.from_value(request.status), "status", limits.MAX_STATUS_BYTES
        )
        lease = None
        if request.HasField("lease_duration"):
            lease = validate.seconds(
                request.lease_duration, "lease_duration", minimum=1.0, maximum=MAX_LEASE
            )
        running = None
        if request.HasField("running"):
            running = validate.idents(request.running.ids, "running.ids")
        registered = await self.store.register_worker(
            namespace,
            wid,
            host=host,
            pid=request.pid,
            status=status,
            running=running,
            lease_duration=lease,
        )
        if registered.lost:
            log.warning("worker %d: lost the leases of jobs %s (handed back or failed); their "
                        "outcomes will be refused", registered.id, registered.lost)  # fmt: skip
        return pb.RegisterWorkerResponse(
            id=registered.id, created=registered.created, lost=registered.lost
        )

    @rpc
    async def UnregisterWorker(
        self, request: pb.UnregisterWorkerRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnregisterWorkerResponse:
        namespace = self.ctx.namespace(request.namespace)
        await self.store.unregister_worker(namespace, validate.ident(request.id))
        return pb.UnregisterWorkerResponse()

    @rpc
    async def ListWorkers(
        self, request: pb.ListWorkersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWorkersResponse:
        namespace = self.ctx.namespace(request.namespace)
        offset, limit = validate.page(
            request.offset, request.limit if request.HasField("limit") else None
        )
        rows, total = await self.store.list_workers(
            namespace,
            offset,
            limit,
            before=validate.optional_ident(request, "before"),
            ids=validate.idents(request.ids, "ids", limits.MAX_FILTER_IDS),
        )
        return pb.ListWorkersResponse(workers=[worker_message(r) for r in rows], total=total)

    @rpc
    async def Broadcast(
        self, request: pb.BroadcastRequest, context: grpc.aio.ServicerContext
    ) -> pb.BroadcastResponse:
        """Unknown ids are skipped, as Minion does: `delivered` is false when none was reached."""
        namespace = self.ctx.namespace(request.namespace)
        command = validate.name(request.command, "command")
        args = self.ctx.payload.list(request.args, "args", limits.MAX_COMMAND_BYTES)
        ids = validate.idents(request.ids, "ids")
        delivered = await self.store.broadcast(namespace, command, args, ids)
        return pb.BroadcastResponse(delivered=delivered)

    @rpc
    async def Receive(
        self, request: pb.ReceiveRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReceiveResponse:
        namespace = self.ctx.namespace(request.namespace)
        commands = await self.store.receive(
            namespace, validate.ident(request.worker_id, "worker_id")
        )
        return pb.ReceiveResponse(commands=[convert.list_value(c) for c in commands])

    @stream_rpc
    async def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SubscribeResponse]:
        async for message in streams.subscribe(self.ctx, self.ctx.dispatcher, request, context):
            yield message
