// The README tour, through the built package exactly as an app imports it.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ApiError, createClient } from "../dist/index.js";
import { API_URL, PASSWORD, email } from "./helpers.mjs";

test("register, log in, submitAndWait a quick add, read the task, log out", async () => {
  const client = createClient({ baseUrl: API_URL });
  const address = email("tour");

  const user = await client.register(address, PASSWORD, { timezone: "Europe/Berlin", locale: "de-de" });
  assert.equal(user.email, address);
  assert.equal(user.timezone, "Europe/Berlin");
  assert.equal(user.locale, "de-DE");

  const me = await client.login(address, PASSWORD);
  assert.equal(me.id, user.id);

  const job = await client.submitAndWait("tasks.quick_add", { text: "call mom tomorrow 5pm #family !high" });
  assert.equal(job.status, "succeeded", JSON.stringify(job));
  assert.equal(job.type, "tasks.quick_add");

  const { items } = await client.tasks();
  assert.deepEqual(items.map((t) => [t.title, t.priority, t.tags]), [["call mom", "high", ["family"]]]);
  assert.match(items[0].due_at, /T17:00:00\+0[12]:00$/);

  // A repeating task: completing it moves it on a week and records the completion.
  const weekly = await client.updateTask(items[0].id, { repeat: "FREQ=WEEKLY" });
  assert.equal(weekly.repeat, "FREQ=WEEKLY");
  assert.equal(weekly.repeat_start, weekly.due_at);
  const moved = await client.updateTask(items[0].id, { done: true });
  assert.equal(moved.done, false);
  assert.match(moved.due_at, /T17:00:00\+0[12]:00$/);
  const { items: completions } = await client.taskCompletions(items[0].id, { limit: 5 });
  assert.deepEqual(completions.map((c) => [c.due_at, c.next_due_at]), [[weekly.due_at, moved.due_at]]);

  await client.logout();
  assert.equal(await client.hasSession(), false);
  await assert.rejects(client.me(), (error) => error instanceof ApiError && error.status === 401);

  // The logged-out refresh token is revoked at the API too: a new client cannot use it.
  const again = createClient({ baseUrl: API_URL });
  await again.login(address, PASSWORD);
  assert.equal((await again.me()).email, address);
});
