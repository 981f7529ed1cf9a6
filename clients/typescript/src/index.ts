// The Personal Assistant SDK: typed calls (openapi-fetch over the generated src/openapi.ts)
// and the few things every app would otherwise write again: keeping and rotating tokens,
// idempotent submits, long-polling a job.
import { createParser } from "eventsource-parser";
import createFetchClient from "openapi-fetch";
import type { components, paths } from "./openapi.js";

export type { components, paths } from "./openapi.js";

type Schemas = components["schemas"];
/** The API fills every field of what it returns; the document marks them optional. */
type Out<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

export type User = Out<Schemas["User"]>;
export type Tokens = Out<Schemas["Token"]>;
export type Job = Out<Schemas["Job"]>;
export type JobStatus = Job["status"];
export type JobType = Out<Schemas["JobType"]>;
export type Task = Out<Schemas["Task"]>;
export type TaskPatch = Schemas["TaskPatch"];
/** One completed occurrence of a task (a repeating task records each one). */
export type TaskCompletion = Out<Schemas["Completion"]>;
export type Action = Out<Schemas["Action"]>;
/** What approving an action does, rendered by the API from its params (never the model's words). */
export type ActionPreview = Schemas["Preview"];
export type Memory = Out<Schemas["Memory"]>;
export type Thread = Out<Schemas["ThreadWithMessages"]>;
export type ThreadMessage = Out<Schemas["ThreadMessage"]>;
export type Schedule = Out<Schemas["Schedule"]>;
export type ScheduleCreate = Schemas["ScheduleCreate"];
export type SchedulePatch = Schemas["SchedulePatch"];
export type CalendarEvent = Out<Schemas["Event"]>;
export type MailMessage = Out<Schemas["Message"]>;
export type Integration = Out<Schemas["Integration"]>;
export type MePatch = Schemas["MePatch"];
export type Backup = Out<Schemas["Backup"]>;
export type AdminJob = Out<Schemas["AdminJob"]>;
export type QueuesOverview = { queues: Out<Schemas["Queue"]>[]; workers: Out<Schemas["Worker"]>[] };
export type UserStats = Out<Schemas["UserStats"]>;
/** The public status page's data: each component's state, open incidents, 90 days of history. */
export type ServiceStatus = Out<Schemas["Status"]>;
export type AccessLogEntry = Out<Schemas["AccessLogEntry"]>;
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** A device that receives pushes: a phone (FCM) or a browser (Web Push). */
export type Device = Out<Schemas["Device"]>;
export interface WebPushSubscriptionJSON {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

export const TERMINAL: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

/** Every error answer of the API, and a lost session: `code` is stable, `message` is for people. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly errors: Record<string, unknown>;

  constructor(status: number, code: string, message: string, errors: Record<string, unknown> = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.errors = errors;
  }
}

/** Where the refresh token lives: memory by default; SecureStore in an app, IndexedDB on the web. */
export interface TokenStorage {
  get(): string | null | Promise<string | null>;
  set(token: string | null): void | Promise<void>;
}

export interface ClientOptions {
  baseUrl: string;
  storage?: TokenStorage;
  /** Runs each refresh under a lock shared by every instance (browser tabs: navigator.locks). */
  lock?: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Called once the session is gone (refresh refused): show the sign-in screen. */
  onSignedOut?: () => void;
  fetch?: typeof globalThis.fetch;
}

/** The names of the job types (GET /v1/job-types lists the ones you may submit). */
export type JobTypeName =
  | "tasks.quick_add" | "agent.assistant" | "agent.plan_day" | "mail.triage" | "mail.draft_reply"
  | "calendar.sync" | "mail.sync" | "report.daily_digest" | "report.weekly_review"
  | "account.export" | "account.delete" | "ops.ping" | "ops.backup" | "ops.verify_backup" | "ops.retention";

/** A job of type T: its `result` is that type's result (null until it succeeded). Every type,
 * submittable or made by the platform (an approved action's tasks.create), is in Job["type"]. */
export type JobOf<T extends Job["type"]> = Extract<Job, { type: T }>;
/** What a succeeded job of type T holds in `result` (the type's result_schema in /openapi.json). */
export type JobResult<T extends Job["type"]> = NonNullable<JobOf<T>["result"]>;

export type JobEventType = "token" | "tool" | "action" | "progress" | "attempt" | "snapshot" | "done";

/** One event of GET /v1/jobs/{id}/events. */
export type JobEvent =
  | { id: string; type: "token"; data: { text: string } }
  | { id: string; type: "tool"; data: { phase: "started" | "finished"; name: string; message: string } }
  | { id: string; type: "action"; data: { action_id: string; type: string; summary: string } }
  | { id: string; type: "progress"; data: { progress: number; message: string | null; status?: JobStatus } }
  | { id: string; type: "attempt"; data: { attempt: number } }
  | { id: string; type: "snapshot"; data: { text: string; actions: { action_id: string; type: string; summary: string }[] } }
  | { id: string; type: "done"; data: { status: JobStatus | "deleted"; error?: { code: string; message: string } } };

export interface StreamOptions {
  /** Called with each event in order; `done` is the last. */
  onEvent: (event: JobEvent) => void;
  signal?: AbortSignal;
  /** Resume after this event id (one seen before). */
  lastEventId?: string;
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Called with each new state of the job (progress), including the final one. */
  onUpdate?: (job: Job) => void;
  /** Seconds each long-poll holds (the API allows 30). */
  pollSeconds?: number;
}

/** One job of a submitBatch: its own idempotency key, or a fresh one so a retried batch makes no job twice. */
export interface BatchItem {
  type: string;
  params?: Record<string, unknown>;
  idempotencyKey?: string;
}

export type BatchItemError = Out<Schemas["JobBatchError"]>;
/** Each item's answer, in order: the job (new or replayed), or why it was refused. */
export type BatchResult = Job | BatchItemError;

export function isBatchError(result: BatchResult): result is BatchItemError {
  return !("id" in result) && "error" in result;
}

export interface SubmitOptions {
  /** Default: a fresh key per call, reused by its own retries, so a retried submit never makes two jobs. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

function memoryStorage(): TokenStorage {
  let token: string | null = null;
  return { get: () => token, set: (value) => void (token = value) };
}

function newKey(): string {
  const c = globalThis.crypto as Crypto | undefined;
  if (c?.randomUUID) return c.randomUUID();
  // React Native without a crypto polyfill: the key only has to be unique per submit.
  return "k-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function retryAfterMs(response: Response, fallback: number): number {
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) * 1000 : fallback;
}

async function errorOf(response: Response): Promise<ApiError> {
  let body: { code?: string; message?: string; errors?: Record<string, unknown> } = {};
  try {
    body = await response.clone().json();
  } catch {
    // not JSON: a proxy's page, say
  }
  return new ApiError(
    response.status,
    body.code ?? `http_${response.status}`,
    body.message ?? `The API answered ${response.status} ${response.statusText}.`,
    body.errors ?? {},
  );
}

const AUTH_PATHS = [
  "/v1/auth/login", "/v1/auth/register", "/v1/auth/refresh", "/v1/auth/logout",
  "/v1/auth/password-reset", "/v1/auth/password-reset/confirm",
];
const MAX_SUBMIT_TRIES = 4;

export class AssistantClient {
  /** The typed openapi-fetch client, for any call the methods below do not wrap. */
  readonly api: ReturnType<typeof createFetchClient<paths>>;
  private readonly baseUrl: string;
  private readonly storage: TokenStorage;
  private readonly lock: <T>(fn: () => Promise<T>) => Promise<T>;
  private readonly onSignedOut?: () => void;
  private readonly rawFetch: typeof globalThis.fetch;
  private accessToken: string | null = null;
  private refreshing: Promise<void> | null = null;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.storage = options.storage ?? memoryStorage();
    this.lock = options.lock ?? ((fn) => fn());
    this.onSignedOut = options.onSignedOut;
    const given = options.fetch ?? globalThis.fetch;
    this.rawFetch = (input, init) => given(input, init);
    this.api = createFetchClient<paths>({ baseUrl: this.baseUrl, fetch: (request) => this.authedFetch(request) });
  }

  // -- the session ---------------------------------------------------------------------

  /** Sends the access token; on a 401 for an expired or invalid one, refreshes once and retries. */
  private async authedFetch(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (AUTH_PATHS.includes(path)) return this.rawFetch(request);
    if (!this.accessToken && (await this.storage.get())) await this.refresh();
    const retry = request.clone();
    const sent = this.accessToken;
    if (sent) request.headers.set("Authorization", `Bearer ${sent}`);
    const response = await this.rawFetch(request);
    if (response.status !== 401 || !(await this.storage.get())) return response;
    const { code } = await errorOf(response);
    if (code !== "token_expired" && code !== "invalid_token") return response;
    // Another request may have refreshed while this one was out: use its token.
    if (this.accessToken === sent) await this.refresh();
    retry.headers.set("Authorization", `Bearer ${this.accessToken}`);
    return this.rawFetch(retry);
  }

  /**
   * Rotates the refresh token for a new pair. Single-flight: concurrent callers share one
   * rotation, because two rotations of one token look like a stolen token to the API,
   * which then ends the whole session.
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.lock(() => this.rotate()).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async rotate(): Promise<void> {
    // Read inside the lock: another tab may have rotated it a moment ago.
    const token = await this.storage.get();
    if (!token) throw await this.signedOut(new ApiError(401, "signed_out", "Not signed in."));
    const response = await this.rawFetch(`${this.baseUrl}/v1/auth/refresh`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: token }),
    });
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401) throw await this.signedOut(error);
      throw error;
    }
    await this.keep(await response.json());
  }

  private async keep(tokens: Tokens): Promise<void> {
    this.accessToken = tokens.access_token;
    await this.storage.set(tokens.refresh_token);
  }

  private async signedOut(error: ApiError): Promise<ApiError> {
    this.accessToken = null;
    await this.storage.set(null);
    this.onSignedOut?.();
    return error;
  }

  /** True when a session is kept (a refresh token in storage), even before any call. */
  async hasSession(): Promise<boolean> {
    return Boolean(this.accessToken || (await this.storage.get()));
  }

  /** The current access token, for a call made without this client (a download link). */
  get token(): string | null {
    return this.accessToken;
  }

  /** Replaces the kept tokens (e.g. from another process); `null` forgets them. */
  async setTokens(tokens: { access_token: string | null; refresh_token: string | null }): Promise<void> {
    this.accessToken = tokens.access_token;
    await this.storage.set(tokens.refresh_token);
  }

  async register(email: string, password: string, extra: { timezone?: string; locale?: string } = {}): Promise<User> {
    return ok(await this.api.POST("/v1/auth/register", { body: { email, password, ...extra } })) as User;
  }

  async login(email: string, password: string): Promise<User> {
    const tokens = ok(await this.api.POST("/v1/auth/login", { body: { email, password } })) as Tokens;
    await this.keep(tokens);
    return this.me();
  }

  /**
   * Ends this login at the API (every token rotated from it) and forgets it here. Pass the
   * `deviceId` this app registered for pushes: it is deleted first, so the next person who
   * signs in on this phone or browser does not receive this account's pushes.
   */
  async logout(options: { deviceId?: string | null } = {}): Promise<void> {
    if (options.deviceId) {
      try {
        await this.deleteDevice(options.deviceId);
      } catch {
        // already gone, or the session ended: signing out goes on
      }
    }
    const token = await this.storage.get();
    this.accessToken = null;
    await this.storage.set(null);
    if (token) await this.api.POST("/v1/auth/logout", { body: { refresh_token: token } });
  }

  /** Changes the password; every other sign-in ends, this one stays. 403 wrong_password. */
  async changePassword(currentPassword: string, newPassword: string): Promise<void> {
    ok(await this.api.POST("/v1/me/password", {
      body: { current_password: currentPassword, new_password: newPassword },
    }));
  }

  /** Whether this server mails reset links (hide "Forgot password?" when not). */
  async passwordResetAvailable(): Promise<boolean> {
    return (ok(await this.api.GET("/v1/auth/password-reset")) as { available: boolean }).available;
  }

  /** Asks for a reset link by mail; the answer is the same whether or not the address has an account. */
  async requestPasswordReset(email: string): Promise<void> {
    ok(await this.api.POST("/v1/auth/password-reset", { body: { email } }));
  }

  /** Sets a new password with the token of a reset link (`/app/reset#token=`); every sign-in ends. */
  async confirmPasswordReset(token: string, newPassword: string): Promise<void> {
    ok(await this.api.POST("/v1/auth/password-reset/confirm", { body: { token, new_password: newPassword } }));
  }

  async me(): Promise<User> {
    return ok(await this.api.GET("/v1/me")) as User;
  }

  /** Who read or changed this user's data, newest first (the actor as a kind, never a name). */
  async accessLog(query: paths["/v1/me/access-log"]["get"]["parameters"]["query"] = {}): Promise<Page<AccessLogEntry>> {
    return ok(await this.api.GET("/v1/me/access-log", { params: { query } })) as Page<AccessLogEntry>;
  }

  /** The service's status (GET /v1/status): no sign-in needed, computed at most every 15 s. */
  async getStatus(): Promise<ServiceStatus> {
    return ok(await this.api.GET("/v1/status")) as ServiceStatus;
  }

  async updateMe(patch: MePatch): Promise<User> {
    return ok(await this.api.PATCH("/v1/me", { body: patch })) as User;
  }

  // -- jobs ----------------------------------------------------------------------------

  async jobTypes(): Promise<JobType[]> {
    return (ok(await this.api.GET("/v1/job-types")) as Page<JobType>).items;
  }

  /** Queues a job; retried on a lost connection, 429 and 5xx with the same Idempotency-Key. */
  async submit<T extends JobTypeName>(type: T, params?: Record<string, unknown>, options?: SubmitOptions): Promise<JobOf<T>>;
  async submit(type: string, params?: Record<string, unknown>, options?: SubmitOptions): Promise<Job>;
  async submit(type: string, params: Record<string, unknown> = {}, options: SubmitOptions = {}): Promise<Job> {
    const key = options.idempotencyKey ?? newKey();
    for (let attempt = 1; ; attempt++) {
      let result;
      try {
        result = await this.api.POST("/v1/jobs", {
          body: { type, params },
          headers: { "Idempotency-Key": key },
          signal: options.signal,
        });
      } catch (error) {
        if (options.signal?.aborted || attempt >= MAX_SUBMIT_TRIES) throw error;
        await sleep(250 * 2 ** attempt, options.signal);
        continue;
      }
      if (!transient(result) || attempt >= MAX_SUBMIT_TRIES) return ok(result) as Job;
      await sleep(retryAfterMs(result.response, 500 * 2 ** attempt), options.signal);
    }
  }

  /**
   * Queues up to 100 jobs in one request (an app flushing what it queued offline). Items
   * without a key get a fresh one, so a retry after a lost answer replays rather than
   * duplicates; retried like submit. A refused item comes back as `{error}` in its place.
   */
  async submitBatch(items: BatchItem[], options: { signal?: AbortSignal } = {}): Promise<BatchResult[]> {
    const jobs = items.map((item) => ({
      type: item.type,
      params: item.params ?? {},
      idempotency_key: item.idempotencyKey ?? newKey(),
    }));
    for (let attempt = 1; ; attempt++) {
      let result;
      try {
        result = await this.api.POST("/v1/jobs/batch", { body: { jobs }, signal: options.signal });
      } catch (error) {
        if (options.signal?.aborted || attempt >= MAX_SUBMIT_TRIES) throw error;
        await sleep(250 * 2 ** attempt, options.signal);
        continue;
      }
      if (!transient(result) || attempt >= MAX_SUBMIT_TRIES) {
        return (ok(result) as { items: BatchResult[] }).items;
      }
      await sleep(retryAfterMs(result.response, 500 * 2 ** attempt), options.signal);
    }
  }

  async job(jobId: string): Promise<Job> {
    return ok(await this.api.GET("/v1/jobs/{job_id}", { params: { path: { job_id: jobId } } })) as Job;
  }

  async jobs(query: paths["/v1/jobs"]["get"]["parameters"]["query"] = {}): Promise<Page<Job>> {
    return ok(await this.api.GET("/v1/jobs", { params: { query } })) as Page<Job>;
  }

  async cancel(jobId: string): Promise<Job> {
    return ok(await this.api.POST("/v1/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } })) as Job;
  }

  /**
   * Long-polls the job until it finishes and returns it. Each poll sends the last ETag
   * (If-None-Match), so an unchanged job costs a 304; 429 and 503 wait their Retry-After.
   */
  async wait(jobId: string, options: WaitOptions = {}): Promise<Job> {
    const { signal, onUpdate } = options;
    const seconds = options.pollSeconds ?? 25;
    let etag: string | null = null;
    let failures = 0;
    for (;;) {
      signal?.throwIfAborted();
      let result: Awaited<ReturnType<typeof this.pollOnce>>;
      try {
        result = await this.pollOnce(jobId, seconds, etag, signal);
      } catch (error) {
        if (signal?.aborted || ++failures > 5) throw error;
        await sleep(500 * 2 ** failures, signal); // the connection dropped: try again
        continue;
      }
      const { response } = result;
      // A poll the server could not hold (its caps) answers at once with Retry-After: wait that
      // long instead of asking again straight away.
      const refused = response.headers.get("Retry-After") !== null;
      if (response.status === 304) {
        if (refused) await sleep(retryAfterMs(response, 2000), signal);
        continue;
      }
      if (response.status === 429 || response.status === 503) {
        await sleep(retryAfterMs(response, 2000), signal);
        continue;
      }
      const job = ok(result) as Job;
      failures = 0;
      etag = response.headers.get("ETag");
      onUpdate?.(job);
      if (TERMINAL.includes(job.status)) return job;
      if (refused) await sleep(retryAfterMs(response, 2000), signal);
    }
  }

  /**
   * Follows the job's live events (Server-Sent Events over fetch, with the Authorization
   * header and its refresh) until `done`, which it resolves with. A dropped connection is
   * resumed from the last event's id (Last-Event-ID): no event is lost or repeated. 429 and
   * 503 wait their Retry-After. `attempt` means a retry started: drop the text so far.
   */
  async streamJob(jobId: string, options: StreamOptions): Promise<JobEvent> {
    const { signal, onEvent } = options;
    let lastId = options.lastEventId ?? null;
    let failures = 0;
    for (;;) {
      signal?.throwIfAborted();
      let response: Response;
      try {
        const headers = new Headers({ Accept: "text/event-stream" });
        if (lastId) headers.set("Last-Event-ID", lastId);
        const url = `${this.baseUrl}/v1/jobs/${encodeURIComponent(jobId)}/events`;
        response = await this.authedFetch(new Request(url, { headers, signal }));
      } catch (error) {
        if (signal?.aborted || ++failures > 8) throw error;
        await sleep(Math.min(500 * 2 ** failures, 8000), signal);
        continue;
      }
      if (response.status === 429 || response.status === 503) {
        await sleep(retryAfterMs(response, 2000), signal);
        continue;
      }
      if (!response.ok || !response.body) throw await errorOf(response);
      let done: JobEvent | null = null;
      const parser = createParser({
        onEvent: (message) => {
          if (!message.event || done) return;
          let data: Record<string, unknown> = {};
          try {
            data = JSON.parse(message.data);
          } catch {
            return; // not one of ours
          }
          const event = { id: message.id ?? "", type: message.event as JobEventType, data } as JobEvent;
          if (message.id) lastId = message.id;
          failures = 0;
          onEvent(event);
          if (event.type === "done") done = event;
        },
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        while (!done) {
          const { value, done: ended } = await reader.read();
          if (ended) break;
          parser.feed(value);
        }
      } catch (error) {
        if (signal?.aborted) throw error; // else the connection dropped: resume below
      } finally {
        reader.cancel().catch(() => undefined);
      }
      if (done) return done;
      failures += 1;
      await sleep(Math.min(250 * 2 ** failures, 5000), signal);
    }
  }

  /** submit, then follow its events: the finished job (its status may be failed or canceled). */
  async submitAndStream<T extends JobTypeName>(type: T, params: Record<string, unknown>, options: SubmitOptions & StreamOptions): Promise<JobOf<T>>;
  async submitAndStream(type: string, params: Record<string, unknown>, options: SubmitOptions & StreamOptions): Promise<Job>;
  async submitAndStream(type: string, params: Record<string, unknown>, options: SubmitOptions & StreamOptions): Promise<Job> {
    const job = await this.submit(type, params, options);
    if (!TERMINAL.includes(job.status)) await this.streamJob(job.id, options);
    return this.job(job.id);
  }

  private pollOnce(jobId: string, seconds: number, etag: string | null, signal?: AbortSignal) {
    return this.api.GET("/v1/jobs/{job_id}", {
      params: { path: { job_id: jobId }, query: { wait: seconds } },
      headers: etag ? { "If-None-Match": etag } : {},
      signal,
    });
  }

  /** submit, then wait: the finished job (look at its status: it may have failed). */
  async submitAndWait<T extends JobTypeName>(type: T, params?: Record<string, unknown>, options?: SubmitOptions & WaitOptions): Promise<JobOf<T>>;
  async submitAndWait(type: string, params?: Record<string, unknown>, options?: SubmitOptions & WaitOptions): Promise<Job>;
  async submitAndWait(type: string, params: Record<string, unknown> = {}, options: SubmitOptions & WaitOptions = {}): Promise<Job> {
    const job = await this.submit(type, params, options);
    return TERMINAL.includes(job.status) ? job : this.wait(job.id, options);
  }

  // -- agents: threads and approvals ---------------------------------------------------

  async threads(query: paths["/v1/threads"]["get"]["parameters"]["query"] = {}): Promise<Page<Out<Schemas["Thread"]>>> {
    return ok(await this.api.GET("/v1/threads", { params: { query } })) as Page<Out<Schemas["Thread"]>>;
  }

  async thread(threadId: string): Promise<Thread> {
    return ok(await this.api.GET("/v1/threads/{thread_id}", { params: { path: { thread_id: threadId } } })) as Thread;
  }

  async actions(jobId: string): Promise<Action[]> {
    const page = ok(await this.api.GET("/v1/jobs/{job_id}/actions", { params: { path: { job_id: jobId } } }));
    return (page as Page<Action>).items;
  }

  /** Approves a proposed action: the job that carries it out (the same one if approved before). */
  async approve(jobId: string, actionId: string): Promise<Job> {
    const path = { job_id: jobId, action_id: actionId };
    return ok(await this.api.POST("/v1/jobs/{job_id}/actions/{action_id}/approve", { params: { path } })) as Job;
  }

  /** Rejects a proposed action; a reason goes back to the assistant's thread. */
  async reject(jobId: string, actionId: string, reason?: string): Promise<Action> {
    const path = { job_id: jobId, action_id: actionId };
    const body = reason ? { reason } : {};
    return ok(await this.api.POST("/v1/jobs/{job_id}/actions/{action_id}/reject", { params: { path }, body })) as Action;
  }

  /** Approves every open task proposal of a job (never drafts, events or memories). */
  async approveAllTasks(jobId: string): Promise<Job[]> {
    const answer = ok(await this.api.POST("/v1/jobs/{job_id}/actions/approve-all", { params: { path: { job_id: jobId } } }));
    return (answer as { items: Job[] }).items;
  }

  // -- memories: facts the agents use; the user writes them, agents only propose ----------

  async memories(query: paths["/v1/memories"]["get"]["parameters"]["query"] = {}): Promise<Page<Memory>> {
    return ok(await this.api.GET("/v1/memories", { params: { query } })) as Page<Memory>;
  }

  async createMemory(text: string): Promise<Memory> {
    return ok(await this.api.POST("/v1/memories", { body: { text } })) as Memory;
  }

  async updateMemory(memoryId: string, text: string): Promise<Memory> {
    return ok(await this.api.PATCH("/v1/memories/{memory_id}", { params: { path: { memory_id: memoryId } }, body: { text } })) as Memory;
  }

  async deleteMemory(memoryId: string): Promise<void> {
    ok(await this.api.DELETE("/v1/memories/{memory_id}", { params: { path: { memory_id: memoryId } } }));
  }

  // -- the user's data -----------------------------------------------------------------

  async tasks(query: paths["/v1/tasks"]["get"]["parameters"]["query"] = {}): Promise<Page<Task>> {
    return ok(await this.api.GET("/v1/tasks", { params: { query } })) as Page<Task>;
  }

  async updateTask(taskId: string, patch: TaskPatch): Promise<Task> {
    return ok(await this.api.PATCH("/v1/tasks/{task_id}", { params: { path: { task_id: taskId } }, body: patch })) as Task;
  }

  /** The task's completed occurrences, newest first. */
  async taskCompletions(
    taskId: string, query: paths["/v1/tasks/{task_id}/completions"]["get"]["parameters"]["query"] = {},
  ): Promise<Page<TaskCompletion>> {
    const params = { path: { task_id: taskId }, query };
    return ok(await this.api.GET("/v1/tasks/{task_id}/completions", { params })) as Page<TaskCompletion>;
  }

  async deleteTask(taskId: string): Promise<void> {
    ok(await this.api.DELETE("/v1/tasks/{task_id}", { params: { path: { task_id: taskId } } }));
  }

  async events(query: paths["/v1/calendar/events"]["get"]["parameters"]["query"] = {}): Promise<Page<CalendarEvent>> {
    return ok(await this.api.GET("/v1/calendar/events", { params: { query } })) as Page<CalendarEvent>;
  }

  async messages(query: paths["/v1/mail/messages"]["get"]["parameters"]["query"] = {}): Promise<Page<MailMessage>> {
    return ok(await this.api.GET("/v1/mail/messages", { params: { query } })) as Page<MailMessage>;
  }

  async schedules(query: paths["/v1/schedules"]["get"]["parameters"]["query"] = {}): Promise<Page<Schedule>> {
    return ok(await this.api.GET("/v1/schedules", { params: { query } })) as Page<Schedule>;
  }

  async createSchedule(schedule: ScheduleCreate): Promise<Schedule> {
    return ok(await this.api.POST("/v1/schedules", { body: schedule })) as Schedule;
  }

  async updateSchedule(scheduleId: string, patch: SchedulePatch): Promise<Schedule> {
    const params = { path: { schedule_id: scheduleId } };
    return ok(await this.api.PATCH("/v1/schedules/{schedule_id}", { params, body: patch })) as Schedule;
  }

  async deleteSchedule(scheduleId: string): Promise<void> {
    ok(await this.api.DELETE("/v1/schedules/{schedule_id}", { params: { path: { schedule_id: scheduleId } } }));
  }

  async runSchedule(scheduleId: string): Promise<Job> {
    return ok(await this.api.POST("/v1/schedules/{schedule_id}/run", { params: { path: { schedule_id: scheduleId } } })) as Job;
  }

  // -- Google --------------------------------------------------------------------------

  async integrations(): Promise<Integration[]> {
    return (ok(await this.api.GET("/v1/integrations")) as Page<Integration>).items;
  }

  /**
   * Starts connecting Google: the consent URL to open in a browser. Google's redirect ends
   * at `returnTo` (one of the server's OAUTH_RETURN_URLS) with `?link_code=`: pass that to
   * completeGoogle, signed in as the same user.
   */
  async connectGoogle(returnTo?: string): Promise<string> {
    const body = returnTo ? { return_to: returnTo } : {};
    return (await this.request<{ url: string }>("POST", "/v1/integrations/google/authorize", body)).url;
  }

  async completeGoogle(linkCode: string): Promise<Integration> {
    return this.request<Integration>("POST", "/v1/integrations/google/complete", { link_code: linkCode });
  }

  async disconnectGoogle(): Promise<void> {
    ok(await this.api.DELETE("/v1/integrations/google"));
  }

  // -- devices (push notifications) -----------------------------------------------------

  /** The user's devices, or null when this server has no push notifications. */
  async devices(): Promise<Page<Device> | null> {
    return this.unlessAbsent(() => this.request<Page<Device>>("GET", "/v1/devices"));
  }

  /** The VAPID key a browser subscribes with, or null when this server has no Web Push. */
  async webPushKey(): Promise<string | null> {
    try {
      const key = await this.unlessAbsent(() => this.request<{ public_key: string }>("GET", "/v1/devices/webpush-key"));
      return key?.public_key ?? null;
    } catch (error) {
      // 503 webpush_not_configured: the server runs without a VAPID key.
      if (error instanceof ApiError && error.code === "webpush_not_configured") return null;
      throw error;
    }
  }

  async registerDevice(device: { platform: "fcm"; token: string; name?: string } | {
    platform: "webpush"; token: WebPushSubscriptionJSON; name?: string;
  }): Promise<Device> {
    return this.request<Device>("POST", "/v1/devices", device);
  }

  async deleteDevice(deviceId: string): Promise<void> {
    await this.request<void>("DELETE", `/v1/devices/${encodeURIComponent(deviceId)}`);
  }

  private async unlessAbsent<T>(call: () => Promise<T>): Promise<T | null> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) return null;
      throw error;
    }
  }

  // -- admins --------------------------------------------------------------------------

  readonly admin = {
    queues: async (): Promise<QueuesOverview> => ok(await this.api.GET("/v1/admin/queues")) as QueuesOverview,
    jobs: async (query: paths["/v1/admin/jobs"]["get"]["parameters"]["query"] = {}): Promise<Page<AdminJob>> =>
      ok(await this.api.GET("/v1/admin/jobs", { params: { query } })) as Page<AdminJob>,
    cancel: async (jobId: string): Promise<AdminJob> =>
      ok(await this.api.POST("/v1/admin/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } })) as AdminJob,
    resend: async (jobId: string): Promise<AdminJob> =>
      ok(await this.api.POST("/v1/admin/jobs/{job_id}/resend", { params: { path: { job_id: jobId } } })) as AdminJob,
    backups: async (query: paths["/v1/admin/backups"]["get"]["parameters"]["query"] = {}): Promise<Page<Backup>> =>
      ok(await this.api.GET("/v1/admin/backups", { params: { query } })) as Page<Backup>,
    userStats: async (): Promise<UserStats> => ok(await this.api.GET("/v1/admin/users/stats")) as UserStats,
  };

  /** A call outside the generated document (a contract newer than the server it was generated from). */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const request = new Request(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const response = await this.authedFetch(request);
    if (!response.ok) throw await errorOf(response);
    return (response.status === 204 ? undefined : await response.json()) as T;
  }
}

/**
 * Worth the same submit again in a moment: a gateway error, an outage (503 `unavailable`) or
 * a short rate limit. Not a refusal that stays: an AI budget spent until midnight, a
 * service the server has not configured, too many jobs already running.
 */
function transient(result: { error?: unknown; response: Response }): boolean {
  const { status } = result.response;
  const code = (result.error as { code?: string } | undefined)?.code;
  if (status === 502 || status === 504) return true;
  if (status === 503) return code === "unavailable";
  if (status === 429) return code === "rate_limited" && retryAfterMs(result.response, 0) <= 10_000;
  return false;
}

/** The answer's data, or its error as an ApiError. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }): T {
  const { response } = result;
  if (response.ok) return result.data as T;
  const body = (result.error ?? {}) as { code?: string; message?: string; errors?: Record<string, unknown> };
  throw new ApiError(
    response.status,
    body.code ?? `http_${response.status}`,
    body.message ?? `The API answered ${response.status} ${response.statusText}.`,
    body.errors ?? {},
  );
}

export function createClient(options: ClientOptions): AssistantClient {
  return new AssistantClient(options);
}
