"""WorkerService.Subscribe: the server stream that carries jobs and commands to one worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from broker import convert, validate
from broker.dispatch import Dispatcher, Message
from broker.errors import InvalidArgument
from broker.services.context import ServiceContext
from broker.store import Subscription
from jobwire.v1 import worker_service_pb2 as pb


def subscription(request: pb.SubscribeRequest) -> Subscription:
    if request.worker_id <= 0:
        raise InvalidArgument("worker_id", "must be the id of a registered worker")
    if request.concurrency < 0:
        raise InvalidArgument("concurrency", "must not be negative")
    if request.spare < 0:
        raise InvalidArgument("spare", "must not be negative")
    limits = {}
    for task, limit in request.limits.items():
        validate.name(task, "limits")
        if limit < 0:
            raise InvalidArgument(f"limits[{task}]", "must not be negative")
        limits[task] = limit
    return Subscription(
        worker=request.worker_id,
        concurrency=request.concurrency,
        queues=validate.names(request.queues, "queues") or ["default"],
        tasks=validate.names(request.tasks, "tasks"),
        min_priority=request.min_priority if request.HasField("min_priority") else None,
        limits=limits,
        spare=request.spare,
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
    stream = await dispatcher.open(namespace, sub, list(request.running))
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
