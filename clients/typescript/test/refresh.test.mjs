// Transparent refresh: one rotation however many requests hit a 401 at once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createClient } from "../dist/index.js";
import { API_URL, PASSWORD, email, recordingFetch, visibleStorage } from "./helpers.mjs";

async function signedIn() {
  const storage = visibleStorage();
  const fetch = recordingFetch();
  let signedOut = 0;
  const client = createClient({ baseUrl: API_URL, storage, fetch, onSignedOut: () => signedOut++ });
  const address = email("refresh");
  await client.register(address, PASSWORD);
  await client.login(address, PASSWORD);
  return { client, storage, fetch, signedOut: () => signedOut };
}

const refreshes = (fetch) => fetch.calls.filter((c) => c.path === "/v1/auth/refresh").length;

test("parallel requests with a dead access token share one refresh and all succeed", async () => {
  const { client, storage, fetch, signedOut } = await signedIn();
  const before = storage.token;
  await client.setTokens({ access_token: "expired.or.forged", refresh_token: before });

  const answers = await Promise.all([
    client.me(), client.tasks(), client.jobs(), client.schedules(), client.jobTypes(), client.me(),
  ]);

  assert.equal(answers.length, 6);
  assert.equal(refreshes(fetch), 1, "one rotation for six 401s");
  assert.notEqual(storage.token, before, "the rotated refresh token is kept");
  assert.equal(signedOut(), 0);
  // Two rotations of one token would have revoked the family: the session must still work.
  await client.setTokens({ access_token: "expired.again", refresh_token: storage.token });
  assert.ok((await client.me()).email);
  assert.equal(refreshes(fetch), 2);
});

test("a refresh in the middle of a wait: the long-poll goes on and sees the job end", async () => {
  const { client, storage, fetch } = await signedIn();
  // Against a bare API this job waits until canceled; under `make run` a worker may finish it
  // first. Either way the wait must refresh the expired token and see the job end.
  const job = await client.submit("report.daily_digest", {});
  await client.setTokens({ access_token: "expired.mid.wait", refresh_token: storage.token });
  const waiting = client.wait(job.id, { pollSeconds: 1 });
  const deadline = Date.now() + 30_000;
  while (refreshes(fetch) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(refreshes(fetch), 1, "the wait's poll refreshed the token");

  try {
    await client.cancel(job.id);
  } catch (error) {
    if (error.status !== 409) throw error; // already finished by a worker
  }
  const finished = await waiting;
  assert.ok(["canceled", "succeeded"].includes(finished.status), finished.status);
  const afterRefresh = fetch.calls.slice(fetch.calls.findIndex((c) => c.path === "/v1/auth/refresh"));
  assert.ok(afterRefresh.some((c) => c.path === `/v1/jobs/${job.id}` && c.method === "GET"
    && c.headers.get("Authorization") !== "Bearer expired.mid.wait"), "the poll was retried with the new token");
  const polls = fetch.calls.filter((c) => c.path === `/v1/jobs/${job.id}` && c.method === "GET"
    && c.headers.get("Authorization") !== "Bearer expired.mid.wait");
  if (polls.length > 1) assert.ok(polls.slice(1).some((c) => c.headers.get("If-None-Match")), "polls after the first send the ETag");
});

test("a refused refresh signs the user out once and says so", async () => {
  const { client, storage, signedOut } = await signedIn();
  const stolen = storage.token;
  await client.refresh(); // the legitimate holder rotated it...
  await client.setTokens({ access_token: "dead", refresh_token: stolen }); // ...and the old one is replayed

  await assert.rejects(client.me(), (error) => error.status === 401 && error.code === "refresh_token_reused");
  assert.equal(signedOut(), 1);
  assert.equal(storage.token, null);
});
