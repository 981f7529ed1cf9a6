// submitBatch: many jobs in one request, each answered in its place.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createClient, isBatchError } from "../dist/index.js";
import { API_URL, PASSWORD, email } from "./helpers.mjs";

async function signedIn(options = {}) {
  const client = createClient({ baseUrl: API_URL, ...options });
  const address = email("batch");
  await client.register(address, PASSWORD);
  await client.login(address, PASSWORD);
  return client;
}

test("a batch queues the valid items, refuses the rest in place, and the jobs finish", async () => {
  const client = await signedIn();

  const results = await client.submitBatch([
    { type: "tasks.quick_add", params: { text: "buy bread tomorrow" } },
    { type: "no.such_type" },
    { type: "tasks.quick_add", params: { text: "call the bank friday 10am" } },
  ]);

  assert.equal(results.length, 3);
  const [bread, refused, bank] = results;
  assert.ok(!isBatchError(bread) && !isBatchError(bank));
  assert.ok(isBatchError(refused));
  assert.equal(refused.error.code, "unknown_job_type");
  for (const job of [bread, bank]) {
    const finished = await client.wait(job.id);
    assert.equal(finished.status, "succeeded");
  }
});

test("a batch whose answer is lost is retried with the same keys: no job twice", async () => {
  let dropped = false;
  const bodies = [];
  const client = await signedIn({
    fetch: async (input, init) => {
      const request = new Request(input, init);
      if (request.method === "POST" && new URL(request.url).pathname === "/v1/jobs/batch") {
        bodies.push(await request.clone().json());
        const response = await fetch(request);
        if (!dropped) {
          dropped = true; // the jobs were made, but the answer never arrived
          throw new TypeError("fetch failed");
        }
        return response;
      }
      return fetch(request);
    },
  });

  const results = await client.submitBatch([
    { type: "tasks.quick_add", params: { text: "one" } },
    { type: "tasks.quick_add", params: { text: "two" }, idempotencyKey: "offline-2" },
  ]);

  assert.equal(bodies.length, 2);
  assert.deepEqual(bodies[1], bodies[0], "the retry sends the same keys");
  assert.equal(bodies[0].jobs[1].idempotency_key, "offline-2");
  const { items } = await client.jobs({ type: "tasks.quick_add" });
  assert.deepEqual(new Set(items.map((j) => j.id)), new Set(results.map((r) => r.id)), "exactly two jobs");
});
