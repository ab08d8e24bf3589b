// A client and a worker in one process: enqueue two jobs, run them, print their results.
//
//   jobwire broker &                         # a broker on 127.0.0.1:50051
//   cd sdk/node && npm ci && npm run build
//   node examples/quickstart.mjs [host:port]
import { Client, JobwireError, Worker } from "@jobwire/client";

const client = new Client({ target: process.argv[2] ?? "127.0.0.1:50051", namespace: "examples" });
const worker = new Worker(client, { concurrency: 2 })
  .task("add", async (job, a, b) => a + b)
  .task("greet", async (job, name) => {
    if (!name) throw new Error("nobody to greet"); // fails the job with this message
    return `hello ${name}`;
  });
const running = worker.run();

try {
  const ids = [await client.enqueue("add", [2, 3]), await client.enqueue("greet", ["node"])];
  for (const id of ids) {
    const job = await client.result(id, { interval: 100, timeout: 10_000 });
    console.log(`job ${id} (${job.task}) ${job.state}:`, job.result);
  }
  await client.enqueue("", []); // rejected by the broker
} catch (error) {
  if (!(error instanceof JobwireError)) throw error;
  console.log(`${error.code}:`, error.fieldViolations); // INVALID_ARGUMENT: [{ field: 'task', ... }]
} finally {
  await worker.stop();
  await running;
  client.close();
}
