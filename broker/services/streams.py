"""WorkerService.Subscribe: the server stream that carries jobs and commands to one worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from broker import convert, limits, validate
from broker.dispatch import Dispatcher, Message
from broker.errors import InvalidArgument
from broker.services.context import ServiceContext
from broker.store import Subscription
from jobwire.v1 import worker_service_pb2 as pb


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


def response(message: Message) -> pb.SubscribeResponse:
    return pb.SubscribeResponse(
        jobs=[convert.dequeued(job) for job in message.jobs],
        commands=[convert.list_value(text) for text in message.commands],
        time=convert.timestamp(time.time()),
    )


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
                await context.abort(
                    grpc.StatusCode.UNAVAILABLE, "broker is shutting down; reconnect"
                )
                return
            yield response(message)
    finally:
        await asyncio.shield(dispatcher.close(stream))
