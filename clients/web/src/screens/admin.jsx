// The admin panel: queues and workers, users, every user's jobs, backups.
import { useEffect, useState } from "preact/hooks";
import { client } from "../client.js";
import { Empty, ErrorNote, Loading, Section, StatusBadge, ago, bytes, describe, formatWhen, jobLabel, seconds, useLoad } from "../ui.jsx";

const REFRESH_MS = 5000;
const STATUSES = ["queued", "running", "succeeded", "failed", "canceled"];

export function Admin({ me }) {
  // Bumped when this page starts or finishes a job (Back up now, Verify): the jobs list shows it.
  const [jobsChanged, setJobsChanged] = useState(0);
  if (me.role !== "admin") {
    return (
      <section class="card" aria-labelledby="admin-title">
        <h1 id="admin-title">Admin</h1>
        <p class="note note-error" role="alert">Not allowed: this page is for administrators.</p>
      </section>
    );
  }
  return (
    <>
      <h1 class="page-title">Admin</h1>
      <div class="admin-grid">
        <Queues />
        <Users />
      </div>
      <AllJobs timeZone={me.timezone} changed={jobsChanged} />
      <Backups timeZone={me.timezone} onJobsChanged={() => setJobsChanged((n) => n + 1)} />
    </>
  );
}

function useEvery(reload, ms) {
  useEffect(() => {
    const timer = setInterval(() => document.visibilityState === "visible" && reload(), ms);
    return () => clearInterval(timer);
  }, [reload, ms]);
}

function Queues() {
  const overview = useLoad(() => client.admin.queues(), []);
  useEvery(overview.reload, REFRESH_MS);
  const data = overview.data;
  return (
    <Section title="Queues">
      <ErrorNote error={overview.error} onRetry={overview.reload} />
      {!data && overview.loading && <Loading />}
      {data && (
        <>
          <div class="table-scroll">
            <table>
              <thead>
                <tr><th scope="col">Queue</th><th scope="col">Depth</th><th scope="col">Queued jobs</th><th scope="col">Oldest wait</th></tr>
              </thead>
              <tbody>
                {data.queues.map((q) => (
                  <tr key={q.name}>
                    <th scope="row">{q.name}</th>
                    <td>{q.depth ?? "?"}</td>
                    <td>{q.queued_jobs}</td>
                    <td>{seconds(q.oldest_wait_seconds)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <h3>Workers online</h3>
          {data.workers.length === 0 ? (
            <p class="note note-error">No worker is online: queued jobs will wait.</p>
          ) : (
            <ul class="workers" aria-label="Workers online">
              {data.workers.map((w) => (
                <li key={w.hostname}>
                  <strong>{w.hostname}</strong>
                  <span class="muted small"> · {w.queues.join(", ")} · {w.concurrency} processes · seen {Math.max(0, Math.round(Date.now() / 1000 - w.seen_at))} s ago</span>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </Section>
  );
}

function Users() {
  const stats = useLoad(() => client.admin.userStats(), []);
  return (
    <Section title="Users">
      <ErrorNote error={stats.error} onRetry={stats.reload} />
      {stats.data && (
        <dl class="stats">
          <div><dt>Accounts</dt><dd>{stats.data.total}</dd></div>
          <div><dt>Active in the last day</dt><dd>{stats.data.active_last_day}</dd></div>
        </dl>
      )}
    </Section>
  );
}

function AllJobs({ timeZone, changed }) {
  const [filters, setFilters] = useState({ status: "", type: "", user: "" });
  const [applied, setApplied] = useState(filters);
  const [cursor, setCursor] = useState(null);
  const [actionError, setActionError] = useState(null);
  const query = Object.fromEntries(Object.entries(applied).filter(([, v]) => v.trim()));
  const jobs = useLoad(() => client.admin.jobs({ limit: 25, ...query, ...(cursor ? { cursor } : {}) }), [JSON.stringify(applied), cursor, changed]);

  const apply = (event) => {
    event.preventDefault();
    setCursor(null);
    setApplied(filters);
  };
  const act = (call) => call().then(jobs.reload, setActionError);
  const set = (name) => (e) => setFilters({ ...filters, [name]: e.currentTarget.value });

  return (
    <Section title="Jobs of every user">
      <form class="filters" onSubmit={apply} aria-label="Filter jobs">
        <label>
          Status
          <select value={filters.status} onChange={set("status")}>
            <option value="">Any</option>
            {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </label>
        <label>
          Type
          <input value={filters.type} placeholder="tasks.quick_add" onInput={set("type")} />
        </label>
        <label>
          User
          <input value={filters.user} placeholder="email or id" onInput={set("user")} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={jobs.error || actionError} onRetry={jobs.reload} />
      {jobs.loading && !jobs.data && <Loading />}
      {jobs.data && jobs.data.items.length === 0 && <Empty title="No jobs match" />}
      {jobs.data && jobs.data.items.length > 0 && (
        <div class="table-scroll">
          <table aria-label="Jobs of every user">
            <thead>
              <tr><th scope="col">Job</th><th scope="col">User</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col"><span class="sr-only">Actions</span></th></tr>
            </thead>
            <tbody>
              {jobs.data.items.map((job) => (
                <tr key={job.id}>
                  <td>
                    <span title={job.type}>{jobLabel(job.type)}</span>
                    {job.error && <span class="small error-text block">{job.error.code}</span>}
                  </td>
                  <td class="small">{job.user_email}</td>
                  <td><StatusBadge status={job.status} /></td>
                  <td class="small" title={job.created_at}>{formatWhen(job.created_at, timeZone)}</td>
                  <td class="row">
                    {job.status === "queued" && (
                      <button type="button" class="secondary small" onClick={() => act(() => client.admin.resend(job.id))}>Resend</button>
                    )}
                    {(job.status === "queued" || job.status === "running") && (
                      <button type="button" class="ghost small" onClick={() => act(() => client.admin.cancel(job.id))}>Cancel</button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div class="row">
        {cursor && <button type="button" class="secondary small" onClick={() => setCursor(null)}>Newest</button>}
        {jobs.data?.next_cursor && (
          <button type="button" class="secondary small" onClick={() => setCursor(jobs.data.next_cursor)}>Older</button>
        )}
      </div>
    </Section>
  );
}

function Backups({ timeZone, onJobsChanged }) {
  const backups = useLoad(() => client.admin.backups({ limit: 20 }), []);
  const [state, setState] = useState({ busy: null, error: null, message: null });

  const run = async (type, params, label) => {
    setState({ busy: label, error: null, message: null });
    try {
      const submitted = await client.submit(type, params);
      onJobsChanged?.();
      const job = await client.wait(submitted.id, {
        onUpdate: (j) => setState((s) => ({ ...s, message: j.progress_message || `${label}: ${j.status}` })),
      });
      if (job.status !== "succeeded") throw new Error(job.error?.message || `${label} ${job.status}.`);
      setState({ busy: null, error: null, message: `${label}: done.` });
    } catch (error) {
      setState({ busy: null, error, message: null });
    }
    backups.reload();
    onJobsChanged?.();
  };

  return (
    <Section title="Backups" actions={
      <button type="button" onClick={() => run("ops.backup", {}, "Backup")} disabled={!!state.busy}>
        {state.busy === "Backup" ? "Backing up…" : "Back up now"}
      </button>
    }>
      {state.message && <p class="muted small" role="status">{state.message}</p>}
      <ErrorNote error={state.error} />
      <ErrorNote error={backups.error} onRetry={backups.reload} />
      {backups.data && backups.data.items.length === 0 && <Empty title="No backups yet">Beat makes one nightly; or back up now.</Empty>}
      {backups.data && backups.data.items.length > 0 && (
        <div class="table-scroll">
          <table aria-label="Backups">
            <thead>
              <tr><th scope="col">Made</th><th scope="col">Size</th><th scope="col">Rows</th><th scope="col">Verification</th><th scope="col"><span class="sr-only">Actions</span></th></tr>
            </thead>
            <tbody>
              {backups.data.items.map((b) => (
                <tr key={b.id}>
                  <td title={b.filename}>{formatWhen(b.created_at, timeZone)} <span class="muted small">({ago(b.created_at)})</span></td>
                  <td>{bytes(b.size)}</td>
                  <td>{b.rows} in {b.tables} tables</td>
                  <td>
                    {b.verify_status ? <StatusBadge status={b.verify_status === "ok" ? "verified" : "failed"} /> : <span class="muted">not verified</span>}
                    {b.verify_message && <span class="small error-text block">{b.verify_message}</span>}
                  </td>
                  <td>
                    <button type="button" class="secondary small" disabled={!!state.busy}
                      onClick={() => run("ops.verify_backup", { backup_id: b.id }, "Verification")}>Verify</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}
