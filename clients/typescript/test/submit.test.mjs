// Idempotent submits and typed errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, createClient } from "../dist/index.js";
import { API_URL, PASSWORD, email, recordingFetch } from "./helpers.mjs";

async function signedIn(options = {}) {
  const client = createClient({ baseUrl: API_URL, ...options });
  const address = email("submit");
  await client.register(address, PASSWORD);
  await client.login(address, PASSWORD);
  return client;
}

test("a submit whose answer is lost is retried with the same key: one job", async () => {
  const keys = [];
  let dropped = false;
  const client = await signedIn({
    fetch: async (input, init) => {
      const request = new Request(input, init);
      const response = await fetch(request);
      if (request.method === "POST" && new URL(request.url).pathname === "/v1/jobs") {
        keys.push(request.headers.get("Idempotency-Key"));
        if (!dropped) {
          dropped = true; // the job was made, but the connection broke before the answer came back
          throw new TypeError("fetch failed");
        }
      }
      return response;
    },
  });

  const job = await client.submit("tasks.quick_add", { text: "water the plants" });

  assert.equal(keys.length, 2);
  assert.ok(keys[0], "an Idempotency-Key is sent by default");
  assert.equal(keys[1], keys[0], "the retry reuses it");
  const { items } = await client.jobs({ type: "tasks.quick_add" });
  assert.deepEqual(items.map((j) => j.id), [job.id], "exactly one job");
});

test("an explicit idempotency key replays the job, and refuses a different body", async () => {
  const client = await signedIn();
  const first = await client.submit("tasks.quick_add", { text: "pay rent" }, { idempotencyKey: "rent-2026-12" });
  const again = await client.submit("tasks.quick_add", { text: "pay rent" }, { idempotencyKey: "rent-2026-12" });
  assert.equal(again.id, first.id);

  await assert.rejects(
    client.submit("tasks.quick_add", { text: "pay more rent" }, { idempotencyKey: "rent-2026-12" }),
    (error) => error instanceof ApiError && error.status === 409 && error.code === "idempotency_key_reused",
  );
});

test("errors are ApiError with status, code and field errors", async () => {
  const client = await signedIn();

  const invalid = await client.submit("tasks.quick_add", {}).catch((error) => error);
  assert.ok(invalid instanceof ApiError);
  assert.equal(invalid.status, 422);
  assert.equal(invalid.code, "invalid_params");
  assert.ok(invalid.errors.text, JSON.stringify(invalid.errors));

  const unknown = await client.submit("tasks.nope", {}).catch((error) => error);
  assert.equal(unknown.code, "unknown_job_type");

  const missing = await client.job("00000000-0000-0000-0000-000000000000").catch((error) => error);
  assert.equal(missing.status, 404);
  assert.equal(missing.code, "not_found");

  const login = await createClient({ baseUrl: API_URL }).login("nobody@example.com", "wrong password").catch((e) => e);
  assert.equal(login.status, 401);
  assert.equal(login.code, "invalid_credentials");

  const anonymous = await createClient({ baseUrl: API_URL }).me().catch((error) => error);
  assert.equal(anonymous.code, "unauthorized");
});

test("a refusal that stays (a service not configured here) is not retried", async () => {
  const fetch = recordingFetch();
  const client = await signedIn({ fetch });

  const refused = await client.submit("agent.assistant", { message: "hello" }).catch((error) => error);

  assert.ok(refused instanceof ApiError);
  assert.equal(refused.status, 503);
  assert.equal(refused.code, "ai_not_configured"); // the API under test has no OPENAI_API_KEY
  assert.equal(fetch.calls.filter((c) => c.method === "POST" && c.path === "/v1/jobs").length, 1);
});
