/**
 * The worker runtime: registers, subscribes to the broker's stream of jobs and commands, runs
 * async handlers (at most `concurrency` at once, enforced by the broker), reports how each job
 * ended through CompleteJobs, heartbeats, reconnects with backoff and stops gracefully.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { toJson, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import type { Client } from "./client.js";
import * as convert from "./convert.js";
import { JobwireError, type StatusCode } from "./errors.js";
import type { DequeuedJob as DequeuedJobMessage } from "./gen/jobwire/v1/job_pb.js";
import type { SubscribeRequestSchema } from "./gen/jobwire/v1/worker_service_pb.js";
import type { Completion, DequeuedJob } from "./types.js";

/** Runs one job: gets the job and its arguments; the return value is the job's result. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TaskHandler = (job: DequeuedJob, ...args: any[]) => unknown;

/** Runs one remote-control command sent with Client.broadcast. */
export type CommandHandler = (worker: Worker, ...args: JsonValue[]) => unknown;

export interface WorkerOptions {
  /** Queues to take jobs from; default ["default"]. */
  queues?: string[];
  /** Most jobs running at once; default 4. The `jobs N` command changes it at run time. */
  concurrency?: number;
  /** Per-task limits: at most this many jobs of the task at once. */
  limits?: Record<string, number>;
  /** Only jobs with at least this priority. */
  minPriority?: number;
  /** Extra slots for jobs with at least `spareMinPriority` (Minion's spare). */
  spare?: number;
  spareMinPriority?: number;
  /** Milliseconds between heartbeats (RegisterWorker); default 5000. */
  heartbeatInterval?: number;
  /** Extra status fields stored with every heartbeat. */
  status?: JsonObject;
  /** Reconnect backoff in milliseconds: doubles from initial up to max, with jitter. */
  backoff?: { initial?: number; max?: number };
  /** Told about errors the worker recovers from (lost stream, failed report); default stderr. */
  onError?: (error: JobwireError) => void;
}

/** Errors after which the worker reconnects; any other code stops it (run() rejects). */
const TRANSIENT: ReadonlySet<StatusCode> = new Set<StatusCode>([
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "RESOURCE_EXHAUSTED",
  "ABORTED",
  "INTERNAL",
  "UNKNOWN",
  "CANCELLED",
]);

export class Worker {
  /** The worker's id once registered. */
  id: number | null = null;
  private readonly client: Client;
  private readonly options: WorkerOptions;
  private concurrency: number;
  private readonly handlers = new Map<string, TaskHandler>();
  private readonly commands = new Map<string, CommandHandler>();
  /** Jobs handed to this worker whose completion the broker has not acknowledged yet. */
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly pending: Completion[] = [];
  private flushing: Promise<void> | null = null;
  private flushAgain = false;
  private stopping = false;
  private readonly stopped = new AbortController();
  private stream: AbortController | null = null;
  private runPromise: Promise<void> | null = null;

  constructor(client: Client, options: WorkerOptions = {}) {
    this.client = client;
    this.options = options;
    this.concurrency = options.concurrency ?? 4;
    this.commands.set("jobs", (worker, n) => worker.setConcurrency(Number(n)));
  }

  /** Adds a task handler; a thrown error fails the job with the error's message. */
  task(name: string, handler: TaskHandler): this {
    this.handlers.set(name, handler);
    return this;
  }

  /** Adds (or replaces) a remote-control command; `jobs N` is built in. */
  command(name: string, handler: CommandHandler): this {
    this.commands.set(name, handler);
    return this;
  }

  /** Ids of the jobs running now (or whose completion is not reported yet). */
  get running(): number[] {
    return [...this.inFlight.keys()];
  }

  /** Changes how many jobs may run at once and resubscribes with the new number. */
  setConcurrency(n: number): void {
    if (!Number.isInteger(n) || n < 1) return;
    this.concurrency = n;
    this.stream?.abort(); // the loop resubscribes at once, passing the running jobs
    void this.heartbeat();
  }

  /**
   * Registers and processes jobs until stop() is called. Rejects with a JobwireError when the
   * broker refuses the worker for a reason reconnecting cannot fix (e.g. INVALID_ARGUMENT).
   */
  run(): Promise<void> {
    this.runPromise ??= this.loop();
    return this.runPromise;
  }

  /** Stops taking jobs, waits for running handlers, reports them and unregisters. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    this.stream?.abort();
    await this.runPromise?.catch(() => undefined);
  }

  private async loop(): Promise<void> {
    if (this.handlers.size === 0) throw new Error("register at least one task before run()");
    if (!(await this.register())) return; // stopped before the broker could be reached
    const heartbeats = this.heartbeats();
    let fatal: JobwireError | null = null;
    try {
      fatal = await this.subscribeLoop();
    } finally {
      this.stopping = true;
      this.stopped.abort();
      await Promise.allSettled([...this.inFlight.values()]);
      await this.flush();
      await heartbeats;
      const id = this.id;
      if (id !== null) await this.client.unregisterWorker(id).catch((e) => this.report(e));
    }
    if (fatal) throw fatal;
  }

  /** Registers, retrying with backoff while the broker is unavailable; false if stopped first. */
  private async register(): Promise<boolean> {
    let delay = this.options.backoff?.initial ?? 250;
    while (!this.stopping) {
      try {
        this.id = await this.client.registerWorker({ status: this.status() });
        return true;
      } catch (e) {
        const error = JobwireError.from(e);
        if (!TRANSIENT.has(error.code)) throw error;
        this.report(error);
        await this.pause(delay);
        delay = Math.min(delay * 2, this.options.backoff?.max ?? 10_000);
      }
    }
    return false;
  }

  /** Keeps one Subscribe stream open; returns the error that ended it for good, if any. */
  private async subscribeLoop(): Promise<JobwireError | null> {
    const initial = this.options.backoff?.initial ?? 250;
    const max = this.options.backoff?.max ?? 10_000;
    let delay = initial;
    let reconnecting = false;
    while (!this.stopping) {
      const stream = new AbortController();
      this.stream = stream;
      try {
        // After a lost stream the broker may have dropped us (repair); a heartbeat re-creates us.
        if (reconnecting) await this.heartbeat(false);
        for await (const message of this.client.rpc.workers.subscribe(this.subscribeRequest(), {
          signal: stream.signal,
        })) {
          delay = initial;
          reconnecting = false;
          for (const command of message.commands) this.onCommand(toJson(ListValueSchema, command) as JsonValue[]);
          for (const job of message.jobs) this.start(job);
        }
        reconnecting = true; // the broker closed the stream cleanly: reconnect
      } catch (e) {
        if (stream.signal.aborted) continue; // stop() or a resubscribe after `jobs N`
        const error = JobwireError.from(e);
        if (!TRANSIENT.has(error.code)) return error;
        this.report(error);
        reconnecting = true;
        await this.pause(delay / 2 + Math.random() * (delay / 2));
        delay = Math.min(delay * 2, max);
      }
    }
    return null;
  }

  private subscribeRequest(): MessageInitShape<typeof SubscribeRequestSchema> {
    return {
      namespace: this.client.namespace,
      workerId: BigInt(this.id ?? 0),
      queues: this.options.queues ?? [],
      tasks: [...this.handlers.keys()],
      concurrency: this.concurrency,
      minPriority: this.options.minPriority,
      running: this.running.map((id) => BigInt(id)),
      limits: this.options.limits ?? {},
      spare: this.options.spare ?? 0,
      spareMinPriority: this.options.spareMinPriority ?? 0,
    };
  }

  private start(message: DequeuedJobMessage): void {
    const job = convert.dequeuedJob(message);
    if (this.inFlight.has(job.id)) return; // already running here (redelivery)
    const done = this.perform(job).then((completion) => {
      this.pending.push(completion);
      return this.flush();
    });
    this.inFlight.set(job.id, done);
  }

  private async perform(job: DequeuedJob): Promise<Completion> {
    const { id, retries } = job;
    try {
      const handler = this.handlers.get(job.task);
      if (!handler) throw new Error(`no handler for task "${job.task}"`);
      const returned = await handler(job, ...job.args);
      const result = (returned === undefined ? null : returned) as JsonValue;
      convert.value(result); // a result that is not JSON fails the job instead of the report
      return { id, retries, outcome: "finished", result };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { id, retries, outcome: "failed", result: message };
    }
  }

  /** Reports pending completions in batches; one report in flight at a time. */
  private flush(): Promise<void> {
    if (this.flushing) {
      this.flushAgain = true;
      return this.flushing;
    }
    this.flushing = this.reportCompletions().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async reportCompletions(): Promise<void> {
    let delay = this.options.backoff?.initial ?? 250;
    const max = this.options.backoff?.max ?? 10_000;
    do {
      this.flushAgain = false;
      const batch = this.pending.splice(0);
      if (batch.length === 0) break;
      try {
        await this.client.completeJobs(batch);
      } catch (e) {
        const error = JobwireError.from(e);
        this.report(error);
        if (TRANSIENT.has(error.code) && !(this.stopping && delay >= max)) {
          // Keep the jobs "running" (so a reconnect does not redeliver them) and try again.
          this.pending.unshift(...batch);
          this.flushAgain = true;
          await sleep(delay);
          delay = Math.min(delay * 2, max);
          continue;
        }
        // Not retryable (or stopping and the broker stays away): the broker's repair will
        // fail these jobs once this worker is gone.
      }
      for (const completion of batch) this.inFlight.delete(completion.id);
    } while (this.flushAgain || this.pending.length > 0);
  }

  private onCommand([name, ...args]: JsonValue[]): void {
    const handler = typeof name === "string" ? this.commands.get(name) : undefined;
    if (!handler) return; // unknown commands are ignored, as in Minion
    Promise.resolve()
      .then(() => handler(this, ...args))
      .catch((e) => this.report(e));
  }

  private status(): JsonObject {
    return { ...this.options.status, jobs: this.concurrency, queues: this.options.queues ?? ["default"] };
  }

  private async heartbeat(report = true): Promise<void> {
    if (this.id === null) return;
    try {
      await this.client.registerWorker({ id: this.id, status: this.status() });
    } catch (e) {
      if (report) this.report(e);
    }
  }

  private async heartbeats(): Promise<void> {
    const interval = this.options.heartbeatInterval ?? 5_000;
    while (!this.stopping) {
      await this.pause(interval);
      if (!this.stopping) await this.heartbeat();
    }
  }

  /** Sleeps, waking early when the worker stops. */
  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopped.signal }).catch(() => undefined);
  }

  private report(error: unknown): void {
    const e = JobwireError.from(error);
    if (this.options.onError) this.options.onError(e);
    else process.stderr.write(`jobwire worker ${this.id ?? "?"}: ${e.message}\n`);
  }
}
