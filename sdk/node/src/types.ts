/** Plain TypeScript views of the broker's messages: numbers for ids, Date for times, JSON values. */
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";

/** A job's lifecycle state (Minion's words). */
export type JobState = "inactive" | "active" | "failed" | "finished";

/** Everything the broker stores about one job (Minion's `job->info`). */
export interface JobInfo {
  id: number;
  task: string;
  args: JsonValue[];
  /** Automatic attempts left. */
  attempts: number;
  children: number[];
  created: Date | null;
  /** When the job becomes runnable (equal to created when it was not delayed). */
  delayed: Date | null;
  expires: Date | null;
  finished: Date | null;
  lax: boolean;
  notes: JsonObject;
  parents: number[];
  priority: number;
  queue: string;
  /** Result given by finish or fail; null when none was given. */
  result: JsonValue;
  retried: Date | null;
  /** How often the job was retried; the concurrency token of finish, fail and retry. */
  retries: number;
  started: Date | null;
  state: JobState;
  /** The broker's clock when this answer was made. */
  time: Date | null;
  /** Id of the worker that last dequeued the job; null when none did. */
  worker: number | null;
}

/**
 * A job handed to a worker; `retries` is the token for finishJob, failJob and retry, and
 * `lease` the fencing token of this attempt to present with them (0n: none was given).
 */
export interface DequeuedJob {
  id: number;
  task: string;
  args: JsonValue[];
  retries: number;
  queue: string;
  priority: number;
  attempts: number;
  notes: JsonObject;
  parents: number[];
  /** Opaque int64 token of this attempt (DequeuedJob.lease on the wire). */
  lease: bigint;
}

/** Options of one job; durations are milliseconds, like setTimeout's. */
export interface EnqueueOptions {
  /** Automatic attempts (at least 1); default 1. */
  attempts?: number;
  /** Milliseconds before the job may run; default none. */
  delay?: number;
  /** Milliseconds the job may wait before it expires; default never. */
  expire?: number;
  /** Whether the job may run after a parent failed. */
  lax?: boolean;
  notes?: JsonObject;
  /** Ids of jobs that must finish first. */
  parents?: number[];
  /** Higher runs first; default 0. */
  priority?: number;
  /** Default "default". */
  queue?: string;
}

/** One job of enqueueMany. */
export interface JobSpec extends EnqueueOptions {
  task: string;
  args?: JsonValue[];
}

/** Filters and paging of listJobs; each list means "any of". */
export interface ListJobsOptions {
  offset?: number;
  /** Most rows (0 to 1000); default 100. */
  limit?: number;
  /** Only jobs with an id lower than this. */
  before?: number;
  ids?: number[];
  /** Only jobs whose notes have any of these top-level keys. */
  notes?: string[];
  queues?: string[];
  states?: JobState[];
  tasks?: string[];
}

/** One page of jobs, newest first, and how many match ignoring offset and limit. */
export interface JobPage {
  jobs: JobInfo[];
  total: number;
}

/** Minion's statistics for a namespace. */
export interface Stats {
  activeJobs: number;
  activeLocks: number;
  activeWorkers: number;
  delayedJobs: number;
  enqueuedJobs: number;
  failedJobs: number;
  finishedJobs: number;
  inactiveJobs: number;
  inactiveSchedules: number;
  inactiveWorkers: number;
  schedules: number;
  /** Milliseconds the Redis server has been up. */
  uptime: number;
  workers: number;
}

/** How a worker reports a job: finished or failed, with a JSON result. */
export interface Completion {
  id: number;
  retries: number;
  outcome: "finished" | "failed";
  result?: JsonValue;
  /** The attempt's lease (DequeuedJob.lease); when given, the broker also requires it. */
  lease?: bigint;
}

/** The broker's answer to a registration or heartbeat (Client.heartbeat). */
export interface Registration {
  id: number;
  /** True when the call created the worker (new, or removed by the broker since): resubscribe. */
  created: boolean;
  /** Jobs listed in `running` that are no longer active under the worker: stop them. */
  lost: number[];
}
