// streamJob: a job's events over fetch with the Authorization header, resumed by Last-Event-ID.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createClient } from "../dist/index.js";
import { API_URL, PASSWORD, email, recordingFetch } from "./helpers.mjs";

async function signedIn(options = {}) {
  const client = createClient({ baseUrl: API_URL, ...options });
  const address = email("stream");
  await client.register(address, PASSWORD);
  await client.login(address, PASSWORD);
  return client;
}

/** Cancels a job still queued after its first event: with or without a worker, it ends. */
async function streamToTheEnd(client, jobId, options = {}) {
  const events = [];
  const done = await client.streamJob(jobId, {
    ...options,
    onEvent: (event) => {
      events.push(event);
      if (events.length === 1 && event.type === "progress" && event.data.status === "queued") {
        client.cancel(jobId).catch((error) => assert.equal(error.status, 409)); // a worker finished it first
      }
    },
    signal: AbortSignal.timeout(30_000),
  });
  return { done, events };
}

test("streamJob follows a job to done, sending the bearer token", async () => {
  const fetch = recordingFetch();
  const client = await signedIn({ fetch });
  const job = await client.submit("tasks.quick_add", { text: "stream me" });
  const { done, events } = await streamToTheEnd(client, job.id);
  assert.equal(done.type, "done");
  assert.ok(["succeeded", "canceled"].includes(done.data.status), done.data.status);
  assert.equal(events.at(-1), done);
  assert.ok(events.every((event) => event.id), "every event has an id");
  const streamCall = fetch.calls.find((c) => c.path === `/v1/jobs/${job.id}/events`);
  assert.match(streamCall.headers.get("Authorization"), /^Bearer /);
});

test("a stream resumed from its last event id repeats nothing", async () => {
  const client = await signedIn();
  const job = await client.submit("tasks.quick_add", { text: "stream me twice" });
  const first = await streamToTheEnd(client, job.id);
  const again = [];
  const done = await client.streamJob(job.id, { onEvent: (e) => again.push(e), lastEventId: first.events.at(-2)?.id });
  assert.equal(done.data.status, first.done.data.status);
  assert.ok(again.every((e) => !first.events.slice(0, -1).some((f) => f.id === e.id)), "no event seen twice");
});
