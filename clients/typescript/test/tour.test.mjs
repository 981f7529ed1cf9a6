// The README tour, through the built package exactly as an app imports it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, createClient } from "../dist/index.js";
import { API_URL, PASSWORD, email } from "./helpers.mjs";

test("register, log in, submitAndWait a quick add, read the task, log out", async () => {
  const client = createClient({ baseUrl: API_URL });
  const address = email("tour");

  const user = await client.register(address, PASSWORD, { timezone: "Europe/Berlin" });
  assert.equal(user.email, address);
  assert.equal(user.timezone, "Europe/Berlin");

  const me = await client.login(address, PASSWORD);
  assert.equal(me.id, user.id);

  const job = await client.submitAndWait("tasks.quick_add", { text: "call mom tomorrow 5pm #family !high" });
  assert.equal(job.status, "succeeded", JSON.stringify(job));
  assert.equal(job.type, "tasks.quick_add");

  const { items } = await client.tasks();
  assert.deepEqual(items.map((t) => [t.title, t.priority, t.tags]), [["call mom", "high", ["family"]]]);
  assert.match(items[0].due_at, /T17:00:00\+0[12]:00$/);

  await client.logout();
  assert.equal(await client.hasSession(), false);
  await assert.rejects(client.me(), (error) => error instanceof ApiError && error.status === 401);

  // The logged-out refresh token is revoked at the API too: a new client cannot use it.
  const again = createClient({ baseUrl: API_URL });
  await again.login(address, PASSWORD);
  assert.equal((await again.me()).email, address);
});
