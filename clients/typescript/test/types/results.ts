// Type-level test of typed job results (`npm test` runs tsc on this folder first): this file
// must compile, and each @ts-expect-error line must be an error (tsc fails if one is not).
import type { AssistantClient, Job, JobOf, JobResult } from "../../src/index.js";

declare const client: AssistantClient;
declare const anyJob: Job;

export async function typedResults(): Promise<string[]> {
  const added = await client.submitAndWait("tasks.quick_add", { text: "call mom tomorrow 5pm" });
  const seen: string[] = [];
  if (added.result) seen.push(added.result.task.title, added.result.task.priority);
  const title: string | undefined = added.result?.task.title;

  // A job read back by id is the union of every type's job: its `type` narrows `result`.
  if (anyJob.type === "agent.assistant" && anyJob.result) seen.push(anyJob.result.reply, anyJob.result.thread_id);
  if (anyJob.type === "report.daily_digest" && anyJob.result) seen.push(anyJob.result.artifact_url);

  const digest: JobResult<"report.daily_digest"> | null = null;
  const made: JobOf<"tasks.create"> | null = null;
  void digest;
  void made;
  return [...seen, title ?? ""];
}

export async function misspeltTypes(): Promise<void> {
  const job = await client.submitAndWait("tasks.quik_add", { text: "x" });
  // @ts-expect-error: a misspelt type is no job type, so its result is not a quick add's
  void job.result?.task.title;

  // @ts-expect-error: no job has this type
  if (anyJob.type === "tasks.quik_add") void anyJob;

  // @ts-expect-error: JobOf names only real types
  const none: JobOf<"tasks.quik_add"> | null = null;
  void none;

  const added = await client.submitAndWait("tasks.quick_add", { text: "x" });
  // @ts-expect-error: a quick add's result has no reply
  void added.result?.reply;
}
