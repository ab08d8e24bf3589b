"""WorkerService.Subscribe: the server stream that carries jobs and commands to one worker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import grpc

from broker import convert, limits, validate
from broker.dispatch import Dispatcher, Message
from broker.errors import InvalidArgument
from broker.services.context import ServiceContext
from broker.store import Completion, Dequeued, Subscription
from broker.values import dumps
from jobwire.v1 import worker_service_pb2 as pb

log = logging.getLogger("jobwire.streams")

# Room left in every message for fields other than the jobs (time, framing).
MESSAGE_OVERHEAD = 1024


def subscription(request: pb.SubscribeRequest) -> Subscription:
    most = limits.MAX_CONCURRENCY
    if len(request.limits) > limits.MAX_TASKS:
        raise InvalidArgument("limits", f"must hold at most {limits.MAX_TASKS} tasks")
    task_limits = {}
    for task, limit in request.limits.items():
        validate.name(task, "limits")
        task_limits[task] = validate.bounded(limit, f"limits[{task}]", most)
    queues = validate.names(request.queues, "queues", limits.MAX_QUEUES) or ["default"]
    tasks = validate.names(request.tasks, "tasks", limits.MAX_TASKS)
    validate.ready_sets(queues, tasks)
    return Subscription(
        worker=validate.ident(request.worker_id, "worker_id"),
        concurrency=validate.bounded(request.concurrency, "concurrency", most),
        queues=queues,
        tasks=tasks,
        min_priority=request.min_priority if request.HasField("min_priority") else None,
        limits=task_limits,
        spare=validate.bounded(request.spare, "spare", most),
        spare_min_priority=request.spare_min_priority,
    )


def responses(message: Message, limit: int) -> tuple[list[pb.SubscribeResponse], list[Dequeued]]:
    """The message as stream messages of at most `limit` bytes each (a big batch of jobs is
    split), and the jobs too large to send at all, even alone."""
    now = convert.timestamp(time.time())
    commands = [convert.list_value(text) for text in message.commands]
    if _bound(message) + MESSAGE_OVERHEAD <= limit:  # the usual case: no need to measure
        jobs = [convert.dequeued(job) for job in message.jobs]
        return [pb.SubscribeResponse(jobs=jobs, commands=commands, time=now)], []
    out: list[pb.SubscribeResponse] = []
    too_large: list[Dequeued] = []
    current = pb.SubscribeResponse(commands=commands, time=now)
    size = current.ByteSize()
    for job in message.jobs:
        item = convert.dequeued(job)
        # A repeated message field costs its bytes plus a tag and a length of at most 6 bytes.
        cost = item.ByteSize() + 6
        if cost + MESSAGE_OVERHEAD > limit:
            too_large.append(job)
            continue
        if size + cost + MESSAGE_OVERHEAD > limit:
            out.append(current)
            current = pb.SubscribeResponse(time=now)
            size = current.ByteSize()
        current.jobs.append(item)
        size += cost
    if current.jobs or current.commands or not out:
        out.append(current)
    return out, too_large


def _bound(message: Message) -> int:
    """An upper bound of the message's encoded size from its texts: a JSON value encodes to at
    most 11 protobuf bytes per JSON character (a one-digit number becomes a double), a name to
    at most 4 bytes per character, and each field's tag and length to a few bytes."""
    size = sum(len(text) for text in message.commands) * 11
    for job in message.jobs:
        size += (len(job.args) + len(job.parents)) * 11 + (len(job.task) + len(job.queue)) * 4
        size += sum(len(k) * 4 + len(v) * 11 + 16 for k, v in job.notes.items())
        size += len(job.trace) + 96
    return size


async def undeliverable(ctx: ServiceContext, namespace: str, jobs: list[Dequeued]) -> None:
    """Fails attempts too large for any message (their notes grew after enqueue): they could
    never reach a worker, and a failure is visible where a silent redelivery loop is not."""
    limit = ctx.settings.max_message_bytes
    completions = []
    for job in jobs:
        size = convert.dequeued(job).ByteSize()
        log.warning("job %d: %d bytes, over the %d-byte message limit; failing it", job.id, size,
                    limit)  # fmt: skip
        reason = dumps(f"Job too large to deliver: {size} bytes (limit {limit})")
        completions.append(Completion(job.id, job.retries, True, reason, job.lease))
    await ctx.store.complete_jobs(namespace, completions)


async def subscribe(
    ctx: ServiceContext,
    dispatcher: Dispatcher,
    request: pb.SubscribeRequest,
    context: grpc.aio.ServicerContext,
) -> AsyncIterator[pb.SubscribeResponse]:
    namespace = ctx.namespace(request.namespace)
    sub = subscription(request)
    if dispatcher.stopping:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "broker is shutting down; reconnect")
    replaces = sub.worker in dispatcher.streams.get(namespace, {})  # its old stream closes
    if not replaces and sum(map(len, dispatcher.streams.values())) >= ctx.settings.max_streams:
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"this replica serves at most {ctx.settings.max_streams} streams; try another",
        )
    running = validate.idents(request.running, "running")
    stream = await dispatcher.open(namespace, sub, running)
    if stream is None:
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"worker {request.worker_id} is not registered; call RegisterWorker first",
        )
        return
    keepalive = ctx.settings.keepalive_interval
    try:
        # Headers go out at once, so the worker knows the stream is open before any job.
        await context.send_initial_metadata(())
        while True:
            try:
                message = await asyncio.wait_for(stream.queue.get(), keepalive)
            except TimeoutError:
                message = Message()
            if message is None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "stream ended; subscribe again")
                return
            out, too_large = responses(message, ctx.settings.max_message_bytes)
            if too_large:
                await undeliverable(ctx, namespace, too_large)
            for item in out:
                yield item
    finally:
        await asyncio.shield(dispatcher.close(stream))
