"""JobService: enqueue, dequeue (with long polling), completion, retry, notes and listing."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from broker import convert, validate
from broker.errors import InvalidArgument, rpc
from broker.services.context import ServiceContext
from broker.store import JobSpec, RetryOptions
from broker.tracing import traceparent
from jobwire.v1 import job_pb2, job_service_pb2_grpc
from jobwire.v1 import job_service_pb2 as pb

MAX_BATCH = 10_000
MAX_DEQUEUE = 1_000


class JobServicer(job_service_pb2_grpc.JobServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def _spec(self, request: pb.EnqueueRequest, prefix: str = "", trace: str = "") -> JobSpec:
        payload = self.ctx.payload
        return JobSpec(
            task=validate.name(request.task, prefix + "task"),
            args=payload.list(request.args, prefix + "args"),
            attempts=validate.attempts(request.attempts, prefix + "attempts")
            if request.HasField("attempts")
            else 1,
            delay=validate.seconds(request.delay, prefix + "delay"),
            expire=validate.optional_seconds(request, "expire", label=prefix + "expire"),
            lax=request.lax,
            notes=payload.notes(request.notes, prefix + "notes"),
            parents=list(request.parents),
            priority=request.priority,
            queue=validate.name(request.queue, prefix + "queue", default="default"),
            trace=trace,
        )

    @rpc
    async def Enqueue(
        self, request: pb.EnqueueRequest, context: grpc.aio.ServicerContext
    ) -> pb.EnqueueResponse:
        namespace = self.ctx.namespace(request.namespace)
        spec = self._spec(request, trace=traceparent(context))
        (job_id,) = await self.store.enqueue(namespace, [spec])
        return pb.EnqueueResponse(id=job_id)

    @rpc
    async def BatchEnqueue(
        self, request: pb.BatchEnqueueRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchEnqueueResponse:
        namespace = self.ctx.namespace(request.namespace)
        if len(request.requests) > MAX_BATCH:
            raise InvalidArgument("requests", f"must hold at most {MAX_BATCH} jobs")
        specs = []
        trace = traceparent(context)
        for i, item in enumerate(request.requests):
            prefix = f"requests[{i}]."
            if item.namespace and self.ctx.namespace(item.namespace) != namespace:
                raise InvalidArgument(prefix + "namespace", "must be empty or equal to the batch's")
            specs.append(self._spec(item, prefix, trace))
        ids = await self.store.enqueue(namespace, specs) if specs else []
        return pb.BatchEnqueueResponse(ids=ids)

    @rpc
    async def Dequeue(
        self, request: pb.DequeueRequest, context: grpc.aio.ServicerContext
    ) -> pb.DequeueResponse:
        namespace = self.ctx.namespace(request.namespace)
        if request.worker_id <= 0:
            raise InvalidArgument("worker_id", "must be the id of a registered worker")
        wait = validate.seconds(request.wait, "wait")
        if request.count < 0 or request.count > MAX_DEQUEUE:
            raise InvalidArgument("count", f"must be between 0 and {MAX_DEQUEUE}")
        queues = validate.names(request.queues, "queues") or ["default"]
        tasks = validate.names(request.tasks, "tasks")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        wakeups = self.ctx.wakeups
        while True:
            generation = wakeups.generation(namespace)
            call = asyncio.ensure_future(
                self.store.dequeue(
                    namespace,
                    request.worker_id,
                    count=request.count or 1,
                    job_id=request.id if request.HasField("id") else None,
                    min_priority=request.min_priority if request.HasField("min_priority") else None,
                    queues=queues,
                    tasks=tasks,
                )
            )
            try:
                jobs, now, next_due = await asyncio.shield(call)
            except asyncio.CancelledError:
                # The caller went away while the script ran: jobs it took were never sent.
                await asyncio.shield(self._return_unsent(namespace, request.worker_id, call))
                raise
            remaining = deadline - loop.time()
            # A draining replica answers long polls at once; the client polls another replica.
            if jobs or remaining <= 0 or self.ctx.dispatcher.stopping:
                return pb.DequeueResponse(jobs=[convert.dequeued(job) for job in jobs])
            if next_due is not None:
                # Wake when the next delayed job becomes due (by Redis' clock), not later.
                remaining = min(remaining, max(next_due - now, 0.0) + 0.001)
            await wakeups.wait(namespace, generation, remaining)

    async def _return_unsent(
        self, namespace: str, worker_id: int, call: asyncio.Future[Any]
    ) -> None:
        try:
            jobs, _, _ = await call
        except Exception:  # the script failed: it took nothing
            return
        if jobs:
            await self.store.undeliver_jobs(
                namespace, worker_id, None, [(job.id, job.retries) for job in jobs]
            )

    @rpc
    async def FinishJob(
        self, request: pb.FinishJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.FinishJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        result = self.ctx.payload.value(request, "result")
        (done,) = await self.store.complete_jobs(
            namespace, [(request.id, request.retries, False, result)]
        )
        return pb.FinishJobResponse(finished=done)

    @rpc
    async def FailJob(
        self, request: pb.FailJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.FailJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        result = self.ctx.payload.value(request, "result")
        (done,) = await self.store.complete_jobs(
            namespace, [(request.id, request.retries, True, result)]
        )
        return pb.FailJobResponse(failed=done)

    @rpc
    async def CompleteJobs(
        self, request: pb.CompleteJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteJobsResponse:
        namespace = self.ctx.namespace(request.namespace)
        if len(request.completions) > MAX_BATCH:
            raise InvalidArgument("completions", f"must hold at most {MAX_BATCH} entries")
        items = []
        for i, c in enumerate(request.completions):
            if c.outcome not in (pb.OUTCOME_FINISHED, pb.OUTCOME_FAILED):
                raise InvalidArgument(
                    f"completions[{i}].outcome", "must be OUTCOME_FINISHED or OUTCOME_FAILED"
                )
            result = self.ctx.payload.value(c, "result") if c.HasField("result") else "null"
            items.append((c.id, c.retries, c.outcome == pb.OUTCOME_FAILED, result))
        applied = await self.store.complete_jobs(namespace, items) if items else []
        return pb.CompleteJobsResponse(applied=applied)

    @rpc
    async def RetryJob(
        self, request: pb.RetryJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.RetryJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        options = RetryOptions(
            attempts=validate.attempts(request.attempts) if request.HasField("attempts") else None,
            delay=validate.seconds(request.delay, "delay"),
            expire=validate.optional_seconds(request, "expire"),
            lax=request.lax if request.HasField("lax") else None,
            parents=list(request.parents.ids) if request.HasField("parents") else None,
            priority=request.priority if request.HasField("priority") else None,
            queue=validate.name(request.queue, "queue") if request.HasField("queue") else None,
        )
        retried = await self.store.retry_job(namespace, request.id, request.retries, options)
        return pb.RetryJobResponse(retried=retried)

    @rpc
    async def RemoveJob(
        self, request: pb.RemoveJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemoveJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        return pb.RemoveJobResponse(removed=await self.store.remove_job(namespace, request.id))

    @rpc
    async def NoteJob(
        self, request: pb.NoteJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.NoteJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        merge = self.ctx.payload.merge(request.merge, "merge")
        return pb.NoteJobResponse(updated=await self.store.note_job(namespace, request.id, merge))

    @rpc
    async def GetJob(
        self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        row = await self.store.get_job(namespace, request.id)
        return pb.GetJobResponse(job=convert.job(row)) if row else pb.GetJobResponse()

    @rpc
    async def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListJobsResponse:
        namespace = self.ctx.namespace(request.namespace)
        offset, limit = validate.page(
            request.offset, request.limit if request.HasField("limit") else None
        )
        states = []
        for i, state in enumerate(request.states):
            if state not in convert.STATE_NAMES:
                raise InvalidArgument(
                    f"states[{i}]", "must be a known state other than STATE_UNSPECIFIED"
                )
            states.append(convert.STATE_NAMES[state])
        rows, total = await self.store.list_jobs(
            namespace,
            offset,
            limit,
            before=request.before if request.HasField("before") else None,
            ids=list(request.ids),
            notes=list(request.notes),
            queues=list(request.queues),
            states=states,
            tasks=list(request.tasks),
        )
        return pb.ListJobsResponse(jobs=convert.jobs(rows), total=total)


__all__ = ["JobServicer", "job_pb2"]
