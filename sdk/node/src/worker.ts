/**
 * The worker runtime: registers, subscribes to the broker's stream of jobs and commands, runs
 * async handlers (at most `concurrency` at once, enforced by the broker), reports how each job
 * ended through CompleteJobs, heartbeats, reconnects with backoff and stops gracefully.
 *
 * Each delivery is one attempt of a job, told apart by (id, retries, lease): a job retried
 * while it runs and handed to this worker again runs again, and the stale attempt's outcome is
 * refused by the broker (logged as a warning). Heartbeats list every job held and set the lease
 * duration; jobs the broker answers as lost are aborted (`job.signal`) and never reported, and a
 * worker the broker had removed subscribes again.
 *
 * Outcomes go out in CompleteJobs calls of at most 3 MiB; one larger on its own fails its job
 * with "result too large". Only UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, CANCELLED and overload
 * are retried (with backoff); a call the broker refuses is split and each outcome sent alone,
 * replaced once by an error result, then given up with a warning.
 *
 * SIGINT/SIGTERM (unless `handleSignals: false`): stop taking jobs, hand back jobs that were
 * delivered but not started, let the running ones finish and report them, unregister; run()
 * then resolves. A second signal stops waiting: running handlers are aborted and left
 * unreported (the broker fails them as "Worker went away" and retries them), the worker
 * unregisters and run() resolves. A third exits the process at once.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { toBinary, toJson, type JsonObject, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { ListValueSchema } from "@bufbuild/protobuf/wkt";
import { completionMessage, type Client } from "./client.js";
import * as convert from "./convert.js";
import { JobwireError, type StatusCode } from "./errors.js";
import type { DequeuedJob as DequeuedJobMessage } from "./gen/jobwire/v1/job_pb.js";
import { CompletionSchema, type Completion as CompletionMessage } from "./gen/jobwire/v1/job_service_pb.js";
import type { SubscribeRequestSchema } from "./gen/jobwire/v1/worker_service_pb.js";
import type { DequeuedJob } from "./types.js";

/** The job a handler runs: the delivered job, plus a signal aborted when it should stop. */
export interface RunningJob extends DequeuedJob {
  /** Aborted when the job is no longer this worker's (lease lost) or a forced stop began. */
  signal: AbortSignal;
}

/** Runs one job: gets the job and its arguments; the return value is the job's result. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type TaskHandler = (job: RunningJob, ...args: any[]) => unknown;

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
  /** Milliseconds a job's lease lasts without a heartbeat; default 6 heartbeats, at least 30 s. */
  leaseDuration?: number;
  /** Extra status fields stored with every heartbeat. */
  status?: JsonObject;
  /** Reconnect backoff in milliseconds: doubles from initial up to max, with jitter. */
  backoff?: { initial?: number; max?: number };
  /** Whether run() handles SIGINT and SIGTERM (graceful, then forced stop); default true. */
  handleSignals?: boolean;
  /** Told about errors the worker recovers from (lost stream, failed report); default stderr. */
  onError?: (error: JobwireError) => void;
  /** Told about jobs whose outcome was refused or not reported; default stderr. */
  onWarning?: (message: string) => void;
}

/** Most bytes of completions in one CompleteJobs request (a broker accepts 4 MiB by default). */
export const MAX_REPORT_BYTES = 3 * 1024 * 1024;
/** Most completions in one CompleteJobs request. */
const MAX_REPORT_COUNT = 1000;

/** Errors after which the stream reconnects (and registration retries); others stop the worker. */
const RECONNECT: ReadonlySet<StatusCode> = new Set<StatusCode>([
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "RESOURCE_EXHAUSTED",
  "ABORTED",
  "INTERNAL",
  "UNKNOWN",
  "CANCELLED",
]);

/** Errors after which sending the same request may succeed; others mean it is refused. */
const TRANSIENT: ReadonlySet<StatusCode> = new Set<StatusCode>([
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "ABORTED",
  "CANCELLED",
]);

/** Whether a report may succeed when sent again (RESOURCE_EXHAUSTED: unless it was too large). */
function transient(error: JobwireError): boolean {
  if (error.code === "RESOURCE_EXHAUSTED") return !/larger than max|exceeds|too large/i.test(error.message);
  return TRANSIENT.has(error.code);
}

/** One attempt of a job held by the worker, from delivery until its outcome is reported. */
interface Entry {
  job: DequeuedJob;
  abort: AbortController;
  /** Resolved once the entry is settled: reported, given up or dropped. */
  settled: Promise<void>;
  resolve: () => void;
  completion: CompletionMessage | null;
  size: number;
  /** The outcome was already replaced after the broker refused it. */
  fallback: boolean;
  /** No longer this worker's (lease lost, forced stop): never reported. */
  dropped: boolean;
}

const keyOf = (job: DequeuedJob): string => `${job.id}:${job.retries}:${job.lease}`;

export class Worker {
  /** The worker's id once registered. */
  id: number | null = null;
  private readonly client: Client;
  private readonly options: WorkerOptions;
  private concurrency: number;
  private readonly handlers = new Map<string, TaskHandler>();
  private readonly commands = new Map<string, CommandHandler>();
  /** Jobs handed to this worker whose outcome the broker has not answered yet, by attempt. */
  private readonly entries = new Map<string, Entry>();
  private readonly outbox: Entry[] = [];
  private flushing: Promise<void> | null = null;
  private stopping = false;
  private forced = false;
  private gaveUp = false;
  /** Jobs a forced stop left running here: never handed back while they may still run. */
  private readonly abandoned = new Set<number>();
  private signals = 0;
  private readonly stopped = new AbortController();
  private readonly force = new AbortController();
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

  /** Ids of the jobs held now: running, or whose outcome is not reported yet. */
  get running(): number[] {
    return [...new Set([...this.entries.values()].map((entry) => entry.job.id))];
  }

  /** Milliseconds a lease lasts without a heartbeat. */
  get leaseDuration(): number {
    const interval = this.options.heartbeatInterval ?? 5_000;
    return this.options.leaseDuration ?? Math.max(6 * interval, 30_000);
  }

  /** Changes how many jobs may run at once and resubscribes with the new number. */
  setConcurrency(n: number): void {
    if (!Number.isInteger(n) || n < 1) return;
    this.concurrency = n;
    this.stream?.abort(); // the loop resubscribes at once, passing the running jobs
    void this.heartbeat();
  }

  /**
   * Registers and processes jobs until stop() is called (or a signal arrives). Rejects with a
   * JobwireError when the broker refuses the worker for a reason reconnecting cannot fix.
   */
  run(): Promise<void> {
    this.runPromise ??= this.loop();
    return this.runPromise;
  }

  /**
   * Stops taking jobs, hands back jobs not started, waits for running handlers, reports them
   * and unregisters. With `force`, running handlers are aborted and left to the broker.
   */
  async stop({ force = false }: { force?: boolean } = {}): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    this.stream?.abort();
    if (force && !this.forced) {
      this.forced = true;
      this.force.abort();
      for (const entry of [...this.entries.values()]) {
        if (entry.completion === null) {
          this.warn(`job ${entry.job.id}: forced stop; left unreported (the broker fails it as "Worker went away")`);
          this.abandoned.add(entry.job.id);
          this.drop(entry);
        }
      }
    }
    await this.runPromise?.catch(() => undefined);
  }

  private async loop(): Promise<void> {
    if (this.handlers.size === 0) throw new Error("register at least one task before run()");
    const removeSignals = this.options.handleSignals === false ? () => undefined : this.installSignals();
    try {
      if (!(await this.register())) return; // stopped before the broker could be reached
      const heartbeats = this.heartbeats();
      let fatal: JobwireError | null = null;
      try {
        fatal = await this.subscribeLoop();
      } finally {
        this.stopping = true;
        this.stopped.abort();
        await this.waitForEntries();
        await heartbeats;
        await this.handBackOrphans();
        const id = this.id;
        if (id !== null) await this.client.unregisterWorker(id).catch((e) => this.report(e));
      }
      if (fatal) throw fatal;
    } finally {
      removeSignals();
    }
  }

  private installSignals(): () => void {
    const onSignal = (name: NodeJS.Signals): void => {
      this.signals += 1;
      if (this.signals === 1) {
        this.warn(`${name}: finishing running jobs (again to stop them)`);
        void this.stop();
      } else if (this.signals === 2) {
        this.warn(`${name}: stopping running jobs (again to exit at once)`);
        void this.stop({ force: true });
      } else {
        process.exit(130);
      }
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    return () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    };
  }

  /** Waits until every entry is reported, dropped or given up. */
  private async waitForEntries(): Promise<void> {
    while (this.entries.size > 0) {
      const pending = [...this.entries.values()].map((entry) => entry.settled);
      await Promise.race([Promise.all(pending), this.abortedPromise(this.force.signal)]);
      if (this.forced) {
        // Forced: give the report in flight its chance; what is left is the broker's.
        await this.flushing;
        for (const entry of [...this.entries.values()]) this.drop(entry);
      }
    }
  }

  private abortedPromise(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
  }

  /** Registers, retrying with backoff while the broker is unavailable; false if stopped first. */
  private async register(): Promise<boolean> {
    let delay = this.options.backoff?.initial ?? 250;
    while (!this.stopping) {
      try {
        const registration = await this.client.heartbeat({
          status: this.status(),
          running: [],
          leaseDuration: this.leaseDuration,
        });
        this.id = registration.id;
        return true;
      } catch (e) {
        const error = JobwireError.from(e);
        if (!RECONNECT.has(error.code)) throw error;
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
        if (stream.signal.aborted) continue; // stop(), a resubscribe after `jobs N` or created
        const error = JobwireError.from(e);
        if (!RECONNECT.has(error.code)) return error;
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
    const key = keyOf(job);
    if (this.entries.has(key)) return; // this attempt is already here (redelivery)
    if (this.stopping) {
      void this.giveBack(job); // arrived on a stream that was closing
      return;
    }
    let resolve = (): void => undefined;
    const settled = new Promise<void>((r) => (resolve = r));
    const entry: Entry = {
      job,
      abort: new AbortController(),
      settled,
      resolve,
      completion: null,
      size: 0,
      fallback: false,
      dropped: false,
    };
    this.entries.set(key, entry);
    void this.perform(entry).then(() => this.flush());
  }

  private async perform(entry: Entry): Promise<void> {
    const { job } = entry;
    const { id, retries } = job;
    const lease = job.lease || undefined;
    let outcome: "finished" | "failed" = "finished";
    let result: JsonValue;
    try {
      const handler = this.handlers.get(job.task);
      if (!handler) throw new Error(`no handler for task "${job.task}"`);
      const returned = await handler({ ...job, signal: entry.abort.signal }, ...job.args);
      result = (returned === undefined ? null : returned) as JsonValue;
      convert.value(result); // a result that is not JSON fails the job instead of the report
    } catch (error) {
      outcome = "failed";
      result = error instanceof Error ? error.message : String(error);
    }
    if (entry.dropped) return;
    this.setCompletion(entry, completionMessage({ id, retries, outcome, result, lease }));
    if (entry.size > MAX_REPORT_BYTES) {
      const error = `result too large: ${entry.size} bytes (limit ${MAX_REPORT_BYTES})`;
      this.setCompletion(entry, completionMessage({ id, retries, outcome: "failed", result: { error }, lease }));
    }
    this.outbox.push(entry);
  }

  private setCompletion(entry: Entry, completion: CompletionMessage): void {
    entry.completion = completion;
    entry.size = toBinary(CompletionSchema, completion).length + 6; // + field tag and length
  }

  /** Reports the outbox in byte-capped batches; one report in flight at a time. */
  private flush(): Promise<void> {
    this.flushing ??= this.reportCompletions().finally(() => {
      this.flushing = null;
      // Outcomes queued while the last round was ending.
      if (this.outbox.length > 0 && !this.gaveUp) void this.flush();
    });
    return this.flushing;
  }

  private async reportCompletions(): Promise<void> {
    let delay = this.options.backoff?.initial ?? 250;
    const max = this.options.backoff?.max ?? 10_000;
    while (this.outbox.length > 0) {
      const batch = this.nextBatch();
      try {
        await this.send(batch);
        delay = this.options.backoff?.initial ?? 250;
      } catch (e) {
        const error = JobwireError.from(e);
        if (this.stopping && (this.forced || delay >= max)) {
          const ids = this.outbox.map((entry) => entry.job.id);
          this.warn(`stopping; outcomes of jobs ${ids.join(", ")} not reported (${error.message})`);
          this.gaveUp = true;
          for (const entry of [...this.outbox]) this.drop(entry);
          return;
        }
        // Keep the jobs held (so a reconnect does not redeliver them) and try again.
        this.report(error);
        await sleep(delay);
        delay = Math.min(delay * 2, max);
      }
    }
  }

  private nextBatch(): Entry[] {
    const batch: Entry[] = [];
    let size = 0;
    for (const entry of this.outbox) {
      size += entry.size;
      if (batch.length > 0 && (size > MAX_REPORT_BYTES || batch.length >= MAX_REPORT_COUNT)) break;
      batch.push(entry);
    }
    return batch;
  }

  /**
   * One CompleteJobs call; each entry is settled once the broker answered for it. A refused call
   * is split and each outcome sent alone; a lone refused outcome is replaced once by an error
   * result, then given up. Transient errors propagate, leaving the unsent entries in the outbox.
   */
  private async send(batch: Entry[]): Promise<void> {
    let applied: boolean[];
    try {
      applied = await this.client.completeJobs(batch.map((entry) => entry.completion as CompletionMessage));
    } catch (e) {
      const error = JobwireError.from(e);
      if (transient(error)) throw error;
      if (batch.length > 1) {
        for (const entry of batch) await this.send([entry]);
        return;
      }
      const [entry] = batch as [Entry];
      const { id, retries, lease } = entry.job;
      if (entry.fallback) {
        this.warn(`job ${id}: the broker refused its outcome (${error.message}); given up`);
        this.settle(entry);
        return;
      }
      entry.fallback = true;
      const result = { error: `the broker refused the result: ${error.message}` };
      this.setCompletion(entry, completionMessage({ id, retries, outcome: "failed", result, lease: lease || undefined }));
      await this.send([entry]);
      return;
    }
    batch.forEach((entry, index) => {
      if (applied[index] !== true) {
        const { id, retries, lease } = entry.job;
        this.warn(
          `job ${id}: outcome refused by the broker: the job is no longer active under this attempt ` +
            `(retries ${retries}, lease ${lease}): it was retried, failed by repair, or its lease was lost`,
        );
      }
      this.settle(entry);
    });
  }

  /** The broker answered for this entry (or it was given up): the slot is free. */
  private settle(entry: Entry): void {
    const index = this.outbox.indexOf(entry);
    if (index >= 0) this.outbox.splice(index, 1);
    const key = keyOf(entry.job);
    if (this.entries.get(key) === entry) this.entries.delete(key);
    entry.resolve();
  }

  /** Forgets an entry without reporting it, aborting its handler. */
  private drop(entry: Entry): void {
    entry.dropped = true;
    entry.abort.abort();
    this.settle(entry);
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

  /** Heartbeat: extends the leases of the jobs held, stops the lost ones, resubscribes if removed. */
  private async heartbeat(report = true): Promise<void> {
    if (this.id === null) return;
    const held = new Set(this.entries.keys());
    try {
      const registration = await this.client.heartbeat({
        id: this.id,
        status: this.status(),
        running: this.running,
        leaseDuration: this.leaseDuration,
      });
      const lost = new Set(registration.lost);
      for (const [key, entry] of [...this.entries]) {
        if (lost.has(entry.job.id) && held.has(key) && !entry.dropped) {
          this.warn(`job ${entry.job.id}: lease lost; stopping it, outcome not reported`);
          this.drop(entry);
        }
      }
      if (registration.created && !this.stopping && this.stream) {
        this.warn("the broker had removed this worker; subscribing again");
        this.stream.abort();
      }
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

  /** Gives a job that was delivered but not started back to inactive, for another worker. */
  private async giveBack(job: DequeuedJob): Promise<void> {
    try {
      await this.client.retryJob(job.id, job.retries, { lease: job.lease || undefined });
    } catch (e) {
      this.report(e);
    }
  }

  /**
   * Jobs the broker made active under this worker that never arrived (written to a stream that
   * was closing, or taken with Dequeue under its id) go back to inactive on stop.
   */
  private async handBackOrphans(): Promise<void> {
    const id = this.id;
    if (id === null) return;
    try {
      const { workers } = await this.client.rpc.workers.listWorkers(
        { namespace: this.client.namespace, ids: [BigInt(id)] },
        this.client.callOptions(),
      );
      for (const jobId of workers.flatMap((worker) => worker.jobs.map(Number))) {
        if (this.abandoned.has(jobId)) continue; // its handler may still run here
        const info = await this.client.jobInfo(jobId);
        if (info !== null && info.state === "active" && info.worker === id) {
          await this.client.retryJob(jobId, info.retries);
        }
      }
    } catch (e) {
      this.report(e);
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

  private warn(message: string): void {
    if (this.options.onWarning) this.options.onWarning(message);
    else process.stderr.write(`jobwire worker ${this.id ?? "?"}: ${message}\n`);
  }
}
