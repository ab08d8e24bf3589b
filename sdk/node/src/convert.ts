/** Conversions between the generated messages and the plain types in types.ts. */
import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import {
  ListValueSchema,
  ValueSchema,
  durationFromMs,
  timestampDate,
  type ListValue,
  type Timestamp,
  type Value,
} from "@bufbuild/protobuf/wkt";
import type { DequeuedJob as DequeuedJobMessage, Job } from "./gen/jobwire/v1/job_pb.js";
import { State } from "./gen/jobwire/v1/job_pb.js";
import { EnqueueRequestSchema, type EnqueueRequest } from "./gen/jobwire/v1/job_service_pb.js";
import type { DequeuedJob, JobInfo, JobSpec, JobState } from "./types.js";

const STATES: Record<JobState, State> = {
  inactive: State.INACTIVE,
  active: State.ACTIVE,
  failed: State.FAILED,
  finished: State.FINISHED,
};

export function stateName(state: State): JobState {
  switch (state) {
    case State.INACTIVE:
      return "inactive";
    case State.ACTIVE:
      return "active";
    case State.FAILED:
      return "failed";
    case State.FINISHED:
      return "finished";
    default:
      throw new Error(`unknown job state ${state}`);
  }
}

export function stateValue(state: JobState): State {
  const value = STATES[state];
  if (value === undefined) throw new TypeError(`unknown job state ${JSON.stringify(state)}`);
  return value;
}

export const date = (ts: Timestamp | undefined): Date | null => (ts ? timestampDate(ts) : null);

export const list = (values: JsonValue[] = []): ListValue => fromJson(ListValueSchema, values);

export const fromList = (lv: ListValue | undefined): JsonValue[] =>
  lv ? (toJson(ListValueSchema, lv) as JsonValue[]) : [];

export const value = (v: JsonValue | undefined): Value | undefined =>
  v === undefined ? undefined : fromJson(ValueSchema, v);

export const fromValue = (v: Value | undefined): JsonValue => (v ? toJson(ValueSchema, v) : null);

export const ids = (values: number[] | undefined): bigint[] => (values ?? []).map((id) => BigInt(id));

export function enqueueRequest(namespace: string, spec: JobSpec): EnqueueRequest {
  return create(EnqueueRequestSchema, {
    namespace,
    task: spec.task,
    args: list(spec.args),
    attempts: spec.attempts,
    delay: spec.delay === undefined ? undefined : durationFromMs(spec.delay),
    expire: spec.expire === undefined ? undefined : durationFromMs(spec.expire),
    lax: spec.lax ?? false,
    notes: spec.notes,
    parents: ids(spec.parents),
    priority: spec.priority ?? 0,
    queue: spec.queue ?? "",
  });
}

export function jobInfo(job: Job): JobInfo {
  return {
    id: Number(job.id),
    task: job.task,
    args: fromList(job.args),
    attempts: job.attempts,
    children: job.children.map(Number),
    created: date(job.created),
    delayed: date(job.delayed),
    expires: date(job.expires),
    finished: date(job.finished),
    lax: job.lax,
    notes: job.notes ?? {},
    parents: job.parents.map(Number),
    priority: job.priority,
    queue: job.queue,
    result: fromValue(job.result),
    retried: date(job.retried),
    retries: job.retries,
    started: date(job.started),
    state: stateName(job.state),
    time: date(job.time),
    worker: job.worker === 0n ? null : Number(job.worker),
  };
}

export function dequeuedJob(job: DequeuedJobMessage): DequeuedJob {
  return {
    id: Number(job.id),
    task: job.task,
    args: fromList(job.args),
    retries: job.retries,
    queue: job.queue,
    priority: job.priority,
    attempts: job.attempts,
    notes: job.notes ?? {},
    parents: job.parents.map(Number),
    lease: job.lease,
  };
}
