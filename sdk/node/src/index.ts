/**
 * @jobwire/client: TypeScript client and worker for the jobwire gRPC job-queue broker.
 *
 *     const client = new Client({ target: "127.0.0.1:50051" });
 *     const id = await client.enqueue("add", [2, 3]);
 *     console.log((await client.result(id))?.result);
 *
 * Generated messages and service descriptors are under "@jobwire/client/gen/jobwire/v1/*".
 */
export { Client } from "./client.js";
export { MAX_RECEIVE_BYTES } from "./client.js";
export type { ClientOptions, DequeueOptions, RegisterWorkerOptions, RetryJobOptions } from "./client.js";
export { JobwireError } from "./errors.js";
export type { FieldViolation, StatusCode } from "./errors.js";
export { MAX_REPORT_BYTES, Worker } from "./worker.js";
export type { CommandHandler, RunningJob, TaskHandler, WorkerOptions } from "./worker.js";
export type {
  Completion,
  DequeuedJob,
  EnqueueOptions,
  JobInfo,
  JobPage,
  JobSpec,
  JobState,
  ListJobsOptions,
  Registration,
  Stats,
} from "./types.js";
