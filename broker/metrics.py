"""Prometheus metrics of one broker replica, served on the HTTP port's /metrics.

Counters and histograms are fed from what the broker already has in hand: one gRPC server
interceptor sees every call (method, status, latency) and the answers that say a job was
enqueued, finished, failed or retried; ScriptRunner reports each script call's latency; the
repair and schedule loops report what they did. Nothing here costs a Redis call per job: the
job and worker gauges come from the stats script, read at scrape time and cached briefly.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from broker.dispatch import Dispatcher
from broker.interceptors import PerMethodInterceptor
from broker.store import Dispatched, RepairCounts, Store
from jobwire.v1 import job_service_pb2 as job_pb

log = logging.getLogger("jobwire.metrics")

# How long one read of the stats script serves scrapes (several Prometheus servers, retries).
STATS_TTL = 2.0
JOB_STATES = ("inactive", "active", "finished", "failed")
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SCRIPT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)
REPAIR_KINDS = tuple(RepairCounts.__dataclass_fields__)
JOB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
               60, 300, 900, 3600)  # fmt: skip


class Metrics:
    """This replica's registry and the hooks that feed it."""

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        default_namespace: str,
        *,
        stats_ttl: float = STATS_TTL,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.default_namespace = default_namespace
        self.stats_ttl = stats_ttl
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.enqueued = Counter(
            "jobwire_jobs_enqueued", "Jobs enqueued through this replica (Enqueue, BatchEnqueue).",
            ["namespace", "queue"], registry=r,
        )  # fmt: skip
        self.finished = Counter(
            "jobwire_jobs_finished",
            "Jobs finished through this replica.",
            ["namespace"],
            registry=r,
        )
        self.failed = Counter(
            "jobwire_jobs_failed",
            "Job attempts failed through this replica (retried automatically while attempts last).",
            ["namespace"], registry=r,
        )  # fmt: skip
        self.retried = Counter(
            "jobwire_jobs_retried", "Jobs retried with RetryJob through this replica.",
            ["namespace"], registry=r,
        )  # fmt: skip
        self.rpcs = Counter(
            "jobwire_grpc_requests", "gRPC calls handled, by method and status code.",
            ["method", "code"], registry=r,
        )  # fmt: skip
        self.rpc_seconds = Histogram(
            "jobwire_grpc_request_duration_seconds",
            "Latency of unary gRPC calls (long polls included), by method.",
            ["method"], buckets=RPC_BUCKETS, registry=r,
        )  # fmt: skip
        self.script_seconds = Histogram(
            "jobwire_redis_script_duration_seconds",
            "Latency of Redis script calls as the caller sees it (pipelining included), by script.",
            ["script"], buckets=SCRIPT_BUCKETS, registry=r,
        )  # fmt: skip
        self.repairs = Counter(
            "jobwire_repairs", "Repairs this replica ran.", ["namespace"], registry=r
        )
        self.repaired = Counter(
            "jobwire_repaired", "What this replica's repairs changed, by kind.",
            ["namespace", "kind"], registry=r,
        )  # fmt: skip
        self.schedules_fired = Counter(
            "jobwire_schedules_fired", "Jobs this replica enqueued for due schedules.",
            ["namespace"], registry=r,
        )  # fmt: skip
        self.waited = Histogram(
            "jobwire_job_wait_seconds",
            "Time from when a job could run (enqueued, or its delay over) until a worker got it.",
            ["namespace", "queue"], buckets=JOB_BUCKETS, registry=r,
        )  # fmt: skip
        self.ran = Histogram(
            "jobwire_job_run_seconds",
            "Time from when a worker got a job until its finish or fail reached the broker.",
            ["namespace"], buckets=JOB_BUCKETS, registry=r,
        )  # fmt: skip
        self._script_children: dict[str, Any] = {}  # labels() once per script name
        self._waited_children: dict[tuple[str, str], Any] = {}
        self._ran_children: dict[str, Any] = {}
        self._stats: dict[str, dict[str, int | float]] = {}
        self._redis_up = 0
        self._stats_read = -STATS_TTL
        self._refreshing: asyncio.Task[None] | None = None
        self.registry.register(_StatsCollector(self))
        self.interceptor = RpcMetrics(self)

    async def render(self) -> bytes:
        """The Prometheus text exposition of everything, stats at most `stats_ttl` old."""
        await self.refresh_stats()
        return generate_latest(self.registry)

    async def refresh_stats(self) -> None:
        """Reads the stats script of every namespace unless a recent read is still fresh."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._stats_read < self.stats_ttl:
            return
        if self._refreshing is None:  # concurrent scrapes share one read
            self._refreshing = asyncio.ensure_future(self._read_stats())
        task = self._refreshing
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self._refreshing is task:
                self._refreshing = None

    async def _read_stats(self) -> None:
        try:
            names = sorted({self.default_namespace, *await self.store.namespaces()})
            values = await asyncio.gather(*(self.store.stats(n) for n in names))
        except Exception as error:  # Redis down: no stale gauges, jobwire_redis_up 0
            log.debug("stats for /metrics failed: %s", error)
            self._stats, self._redis_up = {}, 0
        else:
            self._stats, self._redis_up = dict(zip(names, values, strict=True)), 1
        self._stats_read = asyncio.get_running_loop().time()

    # --- hooks ----------------------------------------------------------------------------

    def job_started(self, namespace: str, queue: str, waited: float) -> None:
        # Called per job: labels() costs as much as observe(), so the children are kept.
        child = self._waited_children.get((namespace, queue))
        if child is None:
            child = self._waited_children[namespace, queue] = self.waited.labels(namespace, queue)
        child.observe(waited)

    def job_ended(self, namespace: str, ran: float) -> None:
        child = self._ran_children.get(namespace)
        if child is None:
            child = self._ran_children[namespace] = self.ran.labels(namespace)
        child.observe(ran)

    def script_called(self, name: str, started_ns: int, error: BaseException | None) -> None:
        """ScriptRunner observer: one script call ended."""
        child = self._script_children.get(name)
        if child is None:
            child = self._script_children[name] = self.script_seconds.labels(name)
        child.observe((time.time_ns() - started_ns) / 1e9)

    def repair_ran(self, namespace: str, counts: RepairCounts) -> None:
        """Repairer hook: this replica repaired `namespace`."""
        self.repairs.labels(namespace).inc()
        for kind in REPAIR_KINDS:
            n = getattr(counts, kind)
            if n:
                self.repaired.labels(namespace, kind).inc(n)

    def schedules_ran(self, namespace: str, fired: Sequence[Dispatched]) -> None:
        """Scheduler hook: this replica fired due schedules of `namespace`."""
        if fired:
            self.schedules_fired.labels(namespace).inc(len(fired))

    # --- what the job RPCs answered -------------------------------------------------------

    def _namespace(self, request: Any) -> str:
        return str(request.namespace) or self.default_namespace

    def _enqueued(self, request: job_pb.EnqueueRequest, _: Any) -> None:
        self.enqueued.labels(self._namespace(request), request.queue or "default").inc()

    def _batch_enqueued(self, request: job_pb.BatchEnqueueRequest, _: Any) -> None:
        namespace = self._namespace(request)
        for queue, n in Tally(item.queue or "default" for item in request.requests).items():
            self.enqueued.labels(namespace, queue).inc(n)

    def _finished(self, request: job_pb.FinishJobRequest, response: Any) -> None:
        if response.finished:
            self.finished.labels(self._namespace(request)).inc()

    def _failed(self, request: job_pb.FailJobRequest, response: Any) -> None:
        if response.failed:
            self.failed.labels(self._namespace(request)).inc()

    def _completed(self, request: job_pb.CompleteJobsRequest, response: Any) -> None:
        finished = failed = 0
        for completion, applied in zip(request.completions, response.applied, strict=False):
            if applied:
                if completion.outcome == job_pb.OUTCOME_FAILED:
                    failed += 1
                else:
                    finished += 1
        namespace = self._namespace(request)
        if finished:
            self.finished.labels(namespace).inc(finished)
        if failed:
            self.failed.labels(namespace).inc(failed)

    def _retried(self, request: job_pb.RetryJobRequest, response: Any) -> None:
        if response.retried:
            self.retried.labels(self._namespace(request)).inc()

    def job_counter(self, method: str) -> Callable[[Any, Any], None] | None:
        """What to count when `method` answers OK, if anything."""
        counters: dict[str, Callable[[Any, Any], None]] = {
            "/jobwire.v1.JobService/Enqueue": self._enqueued,
            "/jobwire.v1.JobService/BatchEnqueue": self._batch_enqueued,
            "/jobwire.v1.JobService/FinishJob": self._finished,
            "/jobwire.v1.JobService/FailJob": self._failed,
            "/jobwire.v1.JobService/CompleteJobs": self._completed,
            "/jobwire.v1.JobService/RetryJob": self._retried,
        }
        return counters.get(method)


class _StatsCollector:
    """Gauges read at scrape time: jobs by state, workers, this replica's streams, Redis up."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        m = self.metrics
        jobs = GaugeMetricFamily(
            "jobwire_jobs", "Jobs stored, by state (stats script).", labels=["namespace", "state"]
        )
        delayed = GaugeMetricFamily(
            "jobwire_jobs_delayed", "Inactive jobs waiting for their delay.", labels=["namespace"]
        )
        workers = GaugeMetricFamily(
            "jobwire_workers", "Registered workers, busy (active) or idle (inactive).",
            labels=["namespace", "state"],
        )  # fmt: skip
        for namespace, stats in m._stats.items():
            for state in JOB_STATES:
                jobs.add_metric([namespace, state], stats[f"{state}_jobs"])
            delayed.add_metric([namespace], stats["delayed_jobs"])
            workers.add_metric([namespace, "active"], stats["active_workers"])
            workers.add_metric([namespace, "inactive"], stats["inactive_workers"])
        streams = GaugeMetricFamily(
            "jobwire_streams", "Subscribe streams open on this replica.", labels=["namespace"]
        )
        for namespace, open_streams in m.dispatcher.streams.items():
            streams.add_metric([namespace], len(open_streams))
        up = GaugeMetricFamily("jobwire_redis_up", "Whether the last stats read reached Redis.")
        up.add_metric([], m._redis_up)
        return [jobs, delayed, workers, streams, up]


def _code(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> str:
    code = context.code()
    return str((code if isinstance(code, grpc.StatusCode) else default).name)


class RpcMetrics(PerMethodInterceptor):
    """Counts every call by method and status, times unary calls, feeds the job counters."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def wrap(self, method: str, handler: Any) -> Any:
        m = self.metrics
        name = method.lstrip("/")
        seconds = m.rpc_seconds.labels(name)
        ok = m.rpcs.labels(name, "OK")
        count_job = m.job_counter(method)
        kwargs = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                started = time.perf_counter()
                code = "UNKNOWN"
                try:
                    response = inner(request, context)
                    if inspect.isawaitable(response):
                        response = await response
                    code = _code(context, grpc.StatusCode.OK)
                except asyncio.CancelledError:
                    code = "CANCELLED"
                    raise
                except Exception:
                    code = _code(context, grpc.StatusCode.UNKNOWN)
                    raise
                finally:
                    seconds.observe(time.perf_counter() - started)
                    (ok if code == "OK" else m.rpcs.labels(name, code)).inc()
                if count_job is not None and code == "OK":
                    count_job(request, response)
                return response

            return grpc.unary_unary_rpc_method_handler(unary, **kwargs)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                code = "UNKNOWN"
                try:
                    async for message in inner_stream(request, context):
                        yield message
                    code = _code(context, grpc.StatusCode.OK)
                except (asyncio.CancelledError, GeneratorExit):
                    code = "CANCELLED"
                    raise
                except Exception:
                    code = _code(context, grpc.StatusCode.UNKNOWN)
                    raise
                finally:
                    m.rpcs.labels(name, code).inc()

            return grpc.unary_stream_rpc_method_handler(stream, **kwargs)
        return handler  # client and bidi streams (reflection): not counted
