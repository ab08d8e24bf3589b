"""JobService: enqueue, dequeue (with long polling), completion, retry, notes and listing."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from broker import convert, limits, validate
from broker.errors import InvalidArgument, rpc
from broker.services.context import ServiceContext
from broker.store import Completion, Dequeued, JobSpec, RetryOptions
from broker.tracing import traceparent
from jobwire.v1 import job_pb2, job_service_pb2_grpc
from jobwire.v1 import job_service_pb2 as pb

# Bytes of a delivered job's message left for everything but args and notes.
JOB_MESSAGE_ROOM = 64 * 1024


class JobServicer(job_service_pb2_grpc.JobServiceServicer):
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def _spec(self, request: pb.EnqueueRequest, prefix: str = "", trace: str = "") -> JobSpec:
        payload = self.ctx.payload
        # What a worker receives must fit in one message, or the job could never be delivered.
        size = request.args.ByteSize() + request.notes.ByteSize() + len(request.parents) * 10
        limit = self.ctx.settings.max_message_bytes - JOB_MESSAGE_ROOM
        if size > limit:
            raise InvalidArgument(
                prefix + "args",
                f"args and notes take {size} bytes; a job may take at most {limit} "
                "(JOBWIRE_MAX_MESSAGE_BYTES less room for the other fields)",
            )
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
            parents=validate.idents(request.parents, prefix + "parents", limits.MAX_PARENTS),
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
        if len(request.requests) > limits.MAX_BATCH:
            raise InvalidArgument("requests", f"must hold at most {limits.MAX_BATCH} jobs")
        specs = []
        size = 0
        trace = traceparent(context)
        for i, item in enumerate(request.requests):
            prefix = f"requests[{i}]."
            if item.namespace and self.ctx.namespace(item.namespace) != namespace:
                raise InvalidArgument(prefix + "namespace", "must be empty or equal to the batch's")
            spec = self._spec(item, prefix, trace)
            size += len(spec.args) + sum(len(k) + len(v) for k, v in spec.notes.items())
            if size > limits.MAX_BATCH_BYTES:
                raise InvalidArgument(
                    "requests", f"args and notes must total at most {limits.MAX_BATCH_BYTES} bytes"
                )
            specs.append(spec)
        ids = await self.store.enqueue(namespace, specs) if specs else []
        return pb.BatchEnqueueResponse(ids=ids)

    @rpc
    async def Dequeue(
        self, request: pb.DequeueRequest, context: grpc.aio.ServicerContext
    ) -> pb.DequeueResponse:
        namespace = self.ctx.namespace(request.namespace)
        worker = validate.ident(request.worker_id, "worker_id")
        wait = validate.seconds(request.wait, "wait", minimum=0, maximum=limits.MAX_WAIT)
        count = validate.bounded(request.count, "count", limits.MAX_DEQUEUE) or 1
        job_id = validate.optional_ident(request, "id")
        queues = validate.names(request.queues, "queues", limits.MAX_QUEUES) or ["default"]
        tasks = validate.names(request.tasks, "tasks", limits.MAX_TASKS)
        # "Up to count": fewer when many ready sets make each pick costly.
        count = min(count, max(limits.MAX_PICK_WORK // validate.ready_sets(queues, tasks), 1))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        wakeups = self.ctx.wakeups
        while True:
            generation = wakeups.generation(namespace)
            call = asyncio.ensure_future(
                self.store.dequeue(
                    namespace,
                    worker,
                    count=count,
                    job_id=job_id,
                    min_priority=request.min_priority if request.HasField("min_priority") else None,
                    queues=queues,
                    tasks=tasks,
                )
            )
            try:
                jobs, now, next_due = await asyncio.shield(call)
            except asyncio.CancelledError:
                # The caller went away while the script ran: jobs it took were never sent.
                await asyncio.shield(self._return_unsent(namespace, worker, call))
                raise
            remaining = deadline - loop.time()
            # A draining replica answers long polls at once; the client polls another replica.
            if jobs or remaining <= 0 or self.ctx.dispatcher.stopping:
                return await self._answer(namespace, request.worker_id, jobs)
            if next_due is not None:
                # Wake when the next delayed job becomes due (by Redis' clock), not later.
                remaining = min(remaining, max(next_due - now, 0.0) + 0.001)
            await wakeups.wait(namespace, generation, remaining)

    async def _answer(
        self, namespace: str, worker_id: int, jobs: list[Dequeued]
    ) -> pb.DequeueResponse:
        """The jobs that fit in one message of max_message_bytes, best first; the rest go back
        to inactive unchanged (the first job always fits: enqueue refuses bigger ones)."""
        response = pb.DequeueResponse()
        size, limit = 0, self.ctx.settings.max_message_bytes - 1024
        for i, job in enumerate(jobs):
            item = convert.dequeued(job)
            size += item.ByteSize() + 6
            if i > 0 and size > limit:
                await self.store.undeliver_jobs(namespace, worker_id, None, jobs[i:])
                break
            response.jobs.append(item)
        return response

    async def _return_unsent(
        self, namespace: str, worker_id: int, call: asyncio.Future[Any]
    ) -> None:
        try:
            jobs, _, _ = await call
        except Exception:  # the script failed: it took nothing
            return
        if jobs:
            await self.store.undeliver_jobs(namespace, worker_id, None, jobs)

    @rpc
    async def FinishJob(
        self, request: pb.FinishJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.FinishJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        result = self.ctx.payload.value(request, "result")
        job_id = validate.ident(request.id)
        lease = validate.optional_ident(request, "lease")
        (done,) = await self.store.complete_jobs(
            namespace, [Completion(job_id, request.retries, False, result, lease)]
        )
        return pb.FinishJobResponse(finished=done)

    @rpc
    async def FailJob(
        self, request: pb.FailJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.FailJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        result = self.ctx.payload.value(request, "result")
        job_id = validate.ident(request.id)
        lease = validate.optional_ident(request, "lease")
        (done,) = await self.store.complete_jobs(
            namespace, [Completion(job_id, request.retries, True, result, lease)]
        )
        return pb.FailJobResponse(failed=done)

    @rpc
    async def CompleteJobs(
        self, request: pb.CompleteJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CompleteJobsResponse:
        namespace = self.ctx.namespace(request.namespace)
        if len(request.completions) > limits.MAX_BATCH:
            raise InvalidArgument("completions", f"must hold at most {limits.MAX_BATCH} entries")
        items = []
        for i, c in enumerate(request.completions):
            validate.ident(c.id, f"completions[{i}].id")
            if c.outcome not in (pb.OUTCOME_FINISHED, pb.OUTCOME_FAILED):
                raise InvalidArgument(
                    f"completions[{i}].outcome", "must be OUTCOME_FINISHED or OUTCOME_FAILED"
                )
            result = self.ctx.payload.value(c, "result") if c.HasField("result") else "null"
            lease = validate.optional_ident(c, "lease")
            items.append(Completion(c.id, c.retries, c.outcome == pb.OUTCOME_FAILED, result, lease))
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
            parents=validate.idents(request.parents.ids, "parents.ids", limits.MAX_PARENTS)
            if request.HasField("parents")
            else None,
            priority=request.priority if request.HasField("priority") else None,
            queue=validate.name(request.queue, "queue") if request.HasField("queue") else None,
        )
        job_id = validate.ident(request.id)
        lease = validate.optional_ident(request, "lease")
        retried = await self.store.retry_job(namespace, job_id, request.retries, options, lease)
        return pb.RetryJobResponse(retried=retried)

    @rpc
    async def RemoveJob(
        self, request: pb.RemoveJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemoveJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        job_id = validate.ident(request.id)
        return pb.RemoveJobResponse(removed=await self.store.remove_job(namespace, job_id))

    @rpc
    async def NoteJob(
        self, request: pb.NoteJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.NoteJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        job_id = validate.ident(request.id)
        merge = self.ctx.payload.merge(request.merge, "merge")
        return pb.NoteJobResponse(updated=await self.store.note_job(namespace, job_id, merge))

    @rpc
    async def GetJob(
        self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetJobResponse:
        namespace = self.ctx.namespace(request.namespace)
        row = await self.store.get_job(namespace, validate.ident(request.id))
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
        for i, state in enumerate(validate.unique(request.states)):
            if state not in convert.STATE_NAMES:
                raise InvalidArgument(
                    f"states[{i}]", "must be a known state other than STATE_UNSPECIFIED"
                )
            states.append(convert.STATE_NAMES[state])
        rows, total = await self.store.list_jobs(
            namespace,
            offset,
            limit,
            before=validate.optional_ident(request, "before"),
            ids=validate.idents(request.ids, "ids", limits.MAX_FILTER_IDS),
            notes=validate.names(request.notes, "notes"),
            queues=validate.names(request.queues, "queues"),
            states=states,
            tasks=validate.names(request.tasks, "tasks"),
        )
        response = pb.ListJobsResponse(jobs=convert.jobs(rows), total=total)
        limit = self.ctx.settings.max_message_bytes - 1024
        if response.ByteSize() > limit:
            # Keep the rows that fit; the caller continues from offset + len(jobs).
            size, keep = 16, 0
            for job in response.jobs:
                size += job.ByteSize() + 6
                if keep and size > limit:
                    break
                keep += 1
            del response.jobs[keep:]
        return response


__all__ = ["JobServicer", "job_pb2"]
