"""AdminService: stats, history, reset (and repair)."""

from __future__ import annotations

import dataclasses

import grpc
from google.protobuf import duration_pb2

from broker import convert
from broker.errors import rpc
from broker.services.context import ServiceContext
from jobwire.v1 import admin_service_pb2 as pb
from jobwire.v1 import admin_service_pb2_grpc


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    @rpc
    async def Stats(
        self, request: pb.StatsRequest, context: grpc.aio.ServicerContext
    ) -> pb.StatsResponse:
        stats = await self.store.stats(self.ctx.namespace(request.namespace))
        uptime = float(stats.pop("uptime"))
        return pb.StatsResponse(
            uptime=duration_pb2.Duration(seconds=int(uptime)),
            **{k: int(v) for k, v in stats.items()},
        )

    @rpc
    async def History(
        self, request: pb.HistoryRequest, context: grpc.aio.ServicerContext
    ) -> pb.HistoryResponse:
        buckets = await self.store.history(self.ctx.namespace(request.namespace))
        return pb.HistoryResponse(
            daily=[
                pb.HourlyCount(
                    epoch=convert.timestamp(epoch), finished_jobs=finished, failed_jobs=failed
                )
                for epoch, finished, failed in buckets
            ]
        )

    @rpc
    async def Reset(
        self, request: pb.ResetRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResetResponse:
        await self.store.reset(
            self.ctx.namespace(request.namespace), all=request.all, locks=request.locks
        )
        return pb.ResetResponse()

    # Repair (workers, locks and repair issue) ---------------------------------------------------

    @rpc
    async def Repair(
        self, request: pb.RepairRequest, context: grpc.aio.ServicerContext
    ) -> pb.RepairResponse:
        """Runs at once with the broker's thresholds, as Minion's repair() does from any worker.

        It skips the replicas' repair mutex: each step is one atomic script, so it interleaves
        safely with a background repair; the mutex only keeps the loops from duplicating work.
        """
        s = self.ctx.settings
        namespace = self.ctx.namespace(request.namespace)
        counts = await self.store.repair(
            namespace,
            s.missing_after,
            s.remove_after,
            s.stuck_after,
            stream_missing_after=s.stream_missing_after,
        )
        return pb.RepairResponse(**dataclasses.asdict(counts))

    # End of Repair ------------------------------------------------------------------------------
