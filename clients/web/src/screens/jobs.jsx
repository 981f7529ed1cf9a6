// Your jobs, with live progress: each active job is long-polled until it finishes.
import { useEffect, useState } from "preact/hooks";
import { client } from "../client.js";
import { Empty, ErrorNote, Loading, Progress, StatusBadge, ago, describe, jobLabel, useLoad } from "../ui.jsx";

const ACTIVE = ["queued", "running"];

export function Jobs() {
  const [status, setStatus] = useState("");
  const jobs = useLoad(() => client.jobs({ limit: 50, ...(status ? { status } : {}) }), [status]);

  return (
    <section class="card" aria-labelledby="jobs-title">
      <div class="card-head">
        <h1 id="jobs-title">Jobs</h1>
        <label class="inline">
          Status
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">All</option>
            {["queued", "running", "succeeded", "failed", "canceled"].map((s) => (
              <option key={s} value={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorNote error={jobs.error} onRetry={jobs.reload} />
      {jobs.loading && !jobs.data && <Loading label="Loading your jobs" />}
      {jobs.data && jobs.data.items.length === 0 && (
        <Empty title="No jobs yet">Quick adds, syncs, reports and the assistant's work show up here.</Empty>
      )}
      <ul class="jobs" aria-label="Jobs">
        {jobs.data?.items.map((job) => <JobItem key={job.id} initial={job} />)}
      </ul>
    </section>
  );
}

export function JobItem({ initial }) {
  const [job, setJob] = useState(initial);
  const [error, setError] = useState(null);

  useEffect(() => {
    if (!ACTIVE.includes(initial.status)) return undefined;
    const stop = new AbortController();
    client.wait(initial.id, { signal: stop.signal, onUpdate: setJob }).catch((e) => {
      if (!stop.signal.aborted) setError(e);
    });
    return () => stop.abort();
  }, [initial.id]);

  const cancel = () => client.cancel(job.id).then(setJob, setError);
  const label = jobLabel(job.type);
  return (
    <li class="job">
      <div class="job-head">
        <span class="job-type">{label}</span>
        <StatusBadge status={job.status} />
        <span class="muted small">{ago(job.created_at)}</span>
      </div>
      {ACTIVE.includes(job.status) && (
        <>
          <Progress value={job.progress} label={`${label} progress`} />
          <div class="row">
            <span class="muted small">{job.progress_message || (job.status === "queued" ? "Waiting for a worker…" : "Working…")}</span>
            <button type="button" class="ghost small" onClick={cancel}>Cancel</button>
          </div>
        </>
      )}
      {job.error && <p class="small error-text">{job.error.message}</p>}
      {job.status === "succeeded" && <JobResult job={job} />}
      {error && <p class="note note-error" role="alert">{describe(error)}</p>}
    </li>
  );
}

function JobResult({ job }) {
  const result = job.result || {};
  if (result.task) return <p class="small muted">Added “{result.task.title}”.</p>;
  if (result.reply) return <p class="small muted">{result.reply}</p>;
  if (result.artifact_url) return <p class="small"><a href={result.artifact_url}>Download</a></p>;
  if (result.summary) return <p class="small muted">{result.summary}</p>;
  return null;
}
