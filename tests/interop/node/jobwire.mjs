// Drives the Node SDK (sdk/node/dist) for tests/interop: one subcommand per scenario, the
// broker address and namespace first, one JSON document on stdout at the end.
//
//   node jobwire.mjs enqueue-and-wait TARGET NAMESPACE N   enqueue add(i, i) for i < N, await results
//   node jobwire.mjs bad-enqueue      TARGET NAMESPACE     enqueue with an empty task
//   node jobwire.mjs worker           TARGET NAMESPACE     run a Worker ("add", "boom") until SIGTERM
//   node jobwire.mjs sleeper          TARGET NAMESPACE N   run a Worker of concurrency N ("sleep")
//                                                          until SIGINT/SIGTERM (the SDK's handlers)
import { Client, JobwireError, Worker } from "../../../sdk/node/dist/index.js";

const [command, target, namespace, ...rest] = process.argv.slice(2);
const client = new Client({ target, namespace, timeoutMs: 10_000 });
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");

try {
  if (command === "enqueue-and-wait") {
    const n = Number(rest[0]);
    const ids = await client.enqueueMany(
      Array.from({ length: n }, (_, i) => ({ task: "add", args: [i, i], notes: { from: "node" } })),
    );
    const infos = await Promise.all(ids.map((id) => client.result(id, { interval: 50, timeout: 20_000 })));
    const page = await client.listJobs({ states: ["finished"], tasks: ["add"] });
    print({
      ids,
      jobs: infos.map((j) => ({
        id: j.id,
        state: j.state,
        result: j.result,
        args: j.args,
        notes: j.notes,
        worker: j.worker,
        finishedIsDate: j.finished instanceof Date,
        createdBeforeFinished: j.created <= j.finished,
      })),
      listedFinished: page.total,
      missing: await client.jobInfo(1_000_000),
      stats: await client.stats(),
    });
  } else if (command === "bad-enqueue") {
    try {
      await client.enqueue("", [1]);
      print({ error: null });
    } catch (error) {
      print({
        isJobwireError: error instanceof JobwireError,
        code: error.code,
        fieldViolations: error.fieldViolations,
        message: error.message,
      });
    }
  } else if (command === "worker") {
    const worker = new Worker(client, { concurrency: 2, heartbeatInterval: 1000 });
    worker
      .task("add", async (job, a, b) => a + b)
      .task("boom", async (job) => {
        throw new Error(`boom ${job.id}`);
      });
    process.on("SIGTERM", () => void worker.stop());
    const running = worker.run();
    // Tell the test the worker is registered and subscribed (its id is known once registered).
    while (worker.id === null) await new Promise((r) => setTimeout(r, 10));
    process.stderr.write(`worker ${worker.id} running\n`);
    await running;
    print({ worker: worker.id, stopped: true, running: worker.running });
  } else if (command === "sleeper") {
    const worker = new Worker(client, { concurrency: Number(rest[0]), heartbeatInterval: 500 });
    // Sleeps `ms` (cut short when the job is taken away) and says which attempt it was.
    worker.task("sleep", async (job, ms) => {
      process.stderr.write(`started ${job.id} ${job.retries}\n`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        job.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()));
      });
      return `attempt ${job.retries}`;
    });
    const running = worker.run();
    while (worker.id === null) await new Promise((r) => setTimeout(r, 10));
    process.stderr.write(`worker ${worker.id} running\n`);
    await running;
    print({ worker: worker.id, stopped: true, running: worker.running });
  } else {
    throw new Error(`unknown command ${command}`);
  }
} finally {
  client.close();
}
