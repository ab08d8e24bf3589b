/** The client: one HTTP/2 connection to a broker, typed calls, JobwireError on failure. */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import {
  createClient,
  type CallOptions,
  type Client as RpcClient,
  type Interceptor,
} from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { create } from "@bufbuild/protobuf";
import { AdminService } from "./gen/jobwire/v1/admin_service_pb.js";
import {
  CompletionSchema,
  JobService,
  Outcome,
  type Completion as CompletionMessage,
} from "./gen/jobwire/v1/job_service_pb.js";
import { WorkerService } from "./gen/jobwire/v1/worker_service_pb.js";
import * as convert from "./convert.js";
import { JobwireError } from "./errors.js";
import type {
  Completion,
  DequeuedJob,
  EnqueueOptions,
  JobInfo,
  JobPage,
  JobSpec,
  ListJobsOptions,
  Registration,
  Stats,
} from "./types.js";

/**
 * Largest message the client accepts: far above what a broker sends (it caps its messages at a
 * few MiB), so one large job or page never makes a worker reconnect forever.
 */
export const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;

export interface ClientOptions {
  /** Broker address: "host:port" (plaintext) or a URL ("http://host:port", "https://host"). */
  target: string;
  /** Namespace of every call; empty means the broker's default namespace. */
  namespace?: string;
  /** Deadline of each unary call in milliseconds; default 30000. Streams have none. */
  timeoutMs?: number;
  /**
   * Bearer token sent as `authorization: Bearer <token>` with every call (and stream); unset:
   * JOBWIRE_TOKEN.
   */
  token?: string;
  /**
   * TLS (also implied by an "https://" target). PEM contents, not paths: `ca` to trust (default:
   * Node's roots), `cert` and `key` as the client certificate for mTLS, and `serverName` when the
   * name in the broker's certificate differs from the target's host. Unset: TLS trusting the PEM
   * file JOBWIRE_TLS_CA names, when that variable is set.
   */
  tls?: TlsOptions;
}

export interface TlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  serverName?: string;
}

export interface DequeueOptions {
  /** Milliseconds to wait for a job when none is ready (long poll); default 0. */
  wait?: number;
  /** Most jobs to take; default 1. */
  count?: number;
  id?: number;
  minPriority?: number;
  /** Default ["default"]. */
  queues?: string[];
  /** Tasks this worker can run; default any. */
  tasks?: string[];
}

export interface RegisterWorkerOptions {
  /** Existing id to heartbeat; unset registers a new worker. */
  id?: number;
  status?: JsonObject;
  /** Default: this machine's host name. */
  host?: string;
  /** Default: this process's id. */
  pid?: number;
  /**
   * Every job the worker holds (running or not reported yet): the broker extends their leases
   * and hands back the other jobs active under the worker once older than its grace.
   */
  running?: number[];
  /** Milliseconds the leases of this worker's jobs last without a heartbeat; unset keeps it. */
  leaseDuration?: number;
}

export interface RetryJobOptions {
  /** The attempt's lease (DequeuedJob.lease): the job must still be active under it. */
  lease?: bigint;
}

const DONE: ReadonlySet<string> = new Set(["finished", "failed"]);

/** Adds `authorization: Bearer <token>` to every request. */
function bearer(token: string): Interceptor {
  return (next) => async (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
}

export class Client {
  readonly namespace: string;
  readonly target: string;
  /** The generated clients, for calls the wrapper does not cover (bigint ids, raw messages). */
  readonly rpc: {
    jobs: RpcClient<typeof JobService>;
    workers: RpcClient<typeof WorkerService>;
    admin: RpcClient<typeof AdminService>;
  };
  private readonly timeoutMs: number;
  private readonly sessions: Http2SessionManager;

  constructor({ target, namespace = "", timeoutMs = 30_000, token, tls }: ClientOptions) {
    // Unset, the token and the CA to trust come from JOBWIRE_TOKEN and JOBWIRE_TLS_CA (a path).
    token = token ?? (process.env.JOBWIRE_TOKEN || undefined);
    const caPath = process.env.JOBWIRE_TLS_CA;
    if (tls === undefined && caPath) tls = { ca: readFileSync(caPath) };
    this.target = target;
    this.namespace = namespace;
    this.timeoutMs = timeoutMs;
    const scheme = tls === undefined ? "http" : "https";
    const baseUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(target) ? target : `${scheme}://${target}`;
    const secure =
      tls === undefined
        ? {}
        : { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.serverName };
    // Pings keep idle worker streams alive through proxies and detect dead connections.
    this.sessions = new Http2SessionManager(
      baseUrl,
      { pingIntervalMs: 30_000, pingTimeoutMs: 10_000 },
      secure,
    );
    const interceptors: Interceptor[] = token === undefined ? [] : [bearer(token)];
    const transport = createGrpcTransport({
      baseUrl,
      sessionManager: this.sessions,
      interceptors,
      readMaxBytes: MAX_RECEIVE_BYTES,
    });
    this.rpc = {
      jobs: createClient(JobService, transport),
      workers: createClient(WorkerService, transport),
      admin: createClient(AdminService, transport),
    };
  }

  /** Closes the connection; calls in flight fail. */
  close(): void {
    this.sessions.abort();
  }

  /** Call options of a unary call: the client's deadline. */
  callOptions(): CallOptions {
    return { timeoutMs: this.timeoutMs };
  }

  private async call<T>(run: (options: CallOptions) => Promise<T>): Promise<T> {
    try {
      return await run(this.callOptions());
    } catch (error) {
      throw JobwireError.from(error);
    }
  }

  // --- jobs ----------------------------------------------------------------------------------

  /** Adds an inactive job and returns its id. */
  async enqueue(task: string, args: JsonValue[] = [], options: EnqueueOptions = {}): Promise<number> {
    const request = convert.enqueueRequest(this.namespace, { ...options, task, args });
    const response = await this.call((o) => this.rpc.jobs.enqueue(request, o));
    return Number(response.id);
  }

  /** Adds several jobs atomically; ids come back in the same order. */
  async enqueueMany(jobs: JobSpec[]): Promise<number[]> {
    const requests = jobs.map((spec) => convert.enqueueRequest("", spec));
    const response = await this.call((o) =>
      this.rpc.jobs.batchEnqueue({ namespace: this.namespace, requests }, o),
    );
    return response.ids.map(Number);
  }

  /** One job, or null when it does not exist (or is inactive and expired). */
  async jobInfo(id: number): Promise<JobInfo | null> {
    const response = await this.call((o) =>
      this.rpc.jobs.getJob({ namespace: this.namespace, id: BigInt(id) }, o),
    );
    return response.job ? convert.jobInfo(response.job) : null;
  }

  /** One page of jobs, newest first; filters are ANDed, each list means "any of". */
  async listJobs(options: ListJobsOptions = {}): Promise<JobPage> {
    const response = await this.call((o) =>
      this.rpc.jobs.listJobs(
        {
          namespace: this.namespace,
          offset: BigInt(options.offset ?? 0),
          limit: options.limit,
          before: options.before === undefined ? undefined : BigInt(options.before),
          ids: convert.ids(options.ids),
          notes: options.notes ?? [],
          queues: options.queues ?? [],
          states: (options.states ?? []).map(convert.stateValue),
          tasks: options.tasks ?? [],
        },
        o,
      ),
    );
    return { jobs: response.jobs.map(convert.jobInfo), total: Number(response.total) };
  }

  /**
   * Polls until the job finished or failed and returns its info (null if it vanished).
   * Rejects with JobwireError("DEADLINE_EXCEEDED") when `timeout` milliseconds pass first.
   */
  async result(id: number, { interval = 500, timeout }: { interval?: number; timeout?: number } = {}): Promise<JobInfo | null> {
    const deadline = timeout === undefined ? Infinity : Date.now() + timeout;
    for (;;) {
      const info = await this.jobInfo(id);
      if (info === null || DONE.has(info.state)) return info;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new JobwireError("DEADLINE_EXCEEDED", `job ${id} did not finish within ${timeout} ms`);
      }
      await sleep(Math.min(interval, remaining));
    }
  }

  /** Takes up to `count` ready jobs for a worker (best first); empty when none was ready. */
  async dequeue(workerId: number, options: DequeueOptions = {}): Promise<DequeuedJob[]> {
    const wait = options.wait ?? 0;
    const response = await this.call((o) =>
      this.rpc.jobs.dequeue(
        {
          namespace: this.namespace,
          workerId: BigInt(workerId),
          wait: wait > 0 ? durationFromMs(wait) : undefined,
          id: options.id === undefined ? undefined : BigInt(options.id),
          minPriority: options.minPriority,
          queues: options.queues ?? [],
          tasks: options.tasks ?? [],
          count: options.count ?? 1,
        },
        // The long poll must not run into the unary deadline.
        { timeoutMs: this.timeoutMs + wait },
      ),
    );
    return response.jobs.map(convert.dequeuedJob);
  }

  /** Finishes an active job; false when it is not active or `retries` (or `lease`) is stale. */
  async finishJob(id: number, retries: number, result: JsonValue = null, lease?: bigint): Promise<boolean> {
    const [applied] = await this.completeJobs([{ id, retries, outcome: "finished", result, lease }]);
    return applied === true;
  }

  /** Fails an active job (retried automatically while attempts remain); false when stale. */
  async failJob(id: number, retries: number, result: JsonValue = null, lease?: bigint): Promise<boolean> {
    const [applied] = await this.completeJobs([{ id, retries, outcome: "failed", result, lease }]);
    return applied === true;
  }

  /** Finishes or fails several jobs in one call; one flag per completion, in order. */
  async completeJobs(completions: Array<Completion | CompletionMessage>): Promise<boolean[]> {
    const messages = completions.map((c) => ("$typeName" in c ? c : completionMessage(c)));
    const response = await this.call((o) =>
      this.rpc.jobs.completeJobs({ namespace: this.namespace, completions: messages }, o),
    );
    return response.applied;
  }

  /** Moves a job back to inactive (keeping its options); false when `retries` is stale. */
  async retryJob(id: number, retries: number, options: RetryJobOptions = {}): Promise<boolean> {
    const response = await this.call((o) =>
      this.rpc.jobs.retryJob(
        { namespace: this.namespace, id: BigInt(id), retries, lease: options.lease },
        o,
      ),
    );
    return response.retried;
  }

  // --- workers -------------------------------------------------------------------------------

  /** Registers a worker, or heartbeats `id`; returns the worker's id. */
  async registerWorker(options: RegisterWorkerOptions = {}): Promise<number> {
    return (await this.heartbeat(options)).id;
  }

  /** registerWorker returning the broker's whole answer: id, created, lost. */
  async heartbeat(options: RegisterWorkerOptions = {}): Promise<Registration> {
    const response = await this.call((o) =>
      this.rpc.workers.registerWorker(
        {
          namespace: this.namespace,
          id: options.id === undefined ? undefined : BigInt(options.id),
          status: options.status ?? {},
          host: options.host ?? hostname(),
          pid: options.pid ?? process.pid,
          running: options.running === undefined ? undefined : { ids: convert.ids(options.running) },
          leaseDuration: options.leaseDuration === undefined ? undefined : durationFromMs(options.leaseDuration),
        },
        o,
      ),
    );
    return { id: Number(response.id), created: response.created, lost: response.lost.map(Number) };
  }

  /** Removes a worker; its active jobs are left for repair. */
  async unregisterWorker(id: number): Promise<void> {
    await this.call((o) => this.rpc.workers.unregisterWorker({ namespace: this.namespace, id: BigInt(id) }, o));
  }

  /** Sends a remote-control command to some (`ids`) or all workers; true when any was reached. */
  async broadcast(command: string, args: JsonValue[] = [], ids: number[] = []): Promise<boolean> {
    const response = await this.call((o) =>
      this.rpc.workers.broadcast(
        { namespace: this.namespace, command, args: convert.list(args), ids: convert.ids(ids) },
        o,
      ),
    );
    return response.delivered;
  }

  // --- admin ---------------------------------------------------------------------------------

  /** Minion's statistics for this namespace. */
  async stats(): Promise<Stats> {
    const s = await this.call((o) => this.rpc.admin.stats({ namespace: this.namespace }, o));
    return {
      activeJobs: Number(s.activeJobs),
      activeLocks: Number(s.activeLocks),
      activeWorkers: Number(s.activeWorkers),
      delayedJobs: Number(s.delayedJobs),
      enqueuedJobs: Number(s.enqueuedJobs),
      failedJobs: Number(s.failedJobs),
      finishedJobs: Number(s.finishedJobs),
      inactiveJobs: Number(s.inactiveJobs),
      inactiveSchedules: Number(s.inactiveSchedules),
      inactiveWorkers: Number(s.inactiveWorkers),
      schedules: Number(s.schedules),
      uptime: s.uptime ? durationMs(s.uptime) : 0,
      workers: Number(s.workers),
    };
  }
}

/** One completion as the wire message (its size can then be measured before sending). */
export function completionMessage(c: Completion): CompletionMessage {
  return create(CompletionSchema, {
    id: BigInt(c.id),
    retries: c.retries,
    outcome: c.outcome === "finished" ? Outcome.FINISHED : Outcome.FAILED,
    result: convert.value(c.result ?? null),
    lease: c.lease,
  });
}
