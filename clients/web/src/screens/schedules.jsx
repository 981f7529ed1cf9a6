// Your automations: a job type on a cron or at a daily time, in your timezone.
import { useState } from "preact/hooks";
import { client } from "../client.js";
import { Empty, ErrorNote, Loading, describe, formatWhen, jobLabel, useLoad } from "../ui.jsx";

export function Schedules({ me }) {
  const schedules = useLoad(() => client.schedules({ limit: 100 }), []);
  const types = useLoad(() => client.jobTypes(), []);

  return (
    <>
      <section class="card" aria-labelledby="schedules-title">
        <div class="card-head">
          <h1 id="schedules-title">Schedules</h1>
        </div>
        <ErrorNote error={schedules.error} onRetry={schedules.reload} />
        {schedules.loading && !schedules.data && <Loading label="Loading your schedules" />}
        {schedules.data && schedules.data.items.length === 0 && <Empty title="No schedules" />}
        <ul class="schedules" aria-label="Schedules">
          {schedules.data?.items.map((s) => (
            <ScheduleItem key={s.id} schedule={s} timeZone={me.timezone} onChange={schedules.reload} />
          ))}
        </ul>
      </section>
      <NewSchedule types={(types.data || []).filter((t) => t.available && t.type !== "account.delete")}
        onCreated={schedules.reload} />
    </>
  );
}

function ScheduleItem({ schedule, timeZone, onChange }) {
  const [error, setError] = useState(null);
  const [note, setNote] = useState(null);
  const act = (call) => call().then(onChange, setError);

  return (
    <li class="schedule">
      <div class="grow">
        <span class="schedule-title">{jobLabel(schedule.job_type)}</span>
        {schedule.default && <span class="badge">default</span>}
        <span class="muted small schedule-when">
          <code>{schedule.cron}</code> ({schedule.timezone})
          {schedule.next_run_at ? ` · next ${formatWhen(schedule.next_run_at, timeZone)}` : " · paused"}
        </span>
        {note && <span class="small muted" role="status">{note}</span>}
        {error && <p class="note note-error" role="alert">{describe(error)}</p>}
      </div>
      <div class="row">
        <label class="switch">
          <input type="checkbox" checked={schedule.enabled}
            onChange={(e) => act(() => client.updateSchedule(schedule.id, { enabled: e.currentTarget.checked }))} />
          Enabled
        </label>
        <button type="button" class="secondary small"
          onClick={() => client.runSchedule(schedule.id).then(() => setNote("Started: see Jobs."), setError)}>
          Run now
        </button>
        {!schedule.default && (
          <button type="button" class="ghost small" aria-label={`Delete schedule ${jobLabel(schedule.job_type)}`}
            onClick={() => act(() => client.deleteSchedule(schedule.id))}>
            Delete
          </button>
        )}
      </div>
    </li>
  );
}

function NewSchedule({ types, onCreated }) {
  const [picked, setJobType] = useState("agent.plan_day");
  // The server hides types it cannot run (agents without AI): start on one it offers.
  const jobType = types.some((t) => t.type === picked) ? picked : types[0]?.type ?? picked;
  const [mode, setMode] = useState("time");
  const [time, setTime] = useState("08:00");
  const [cron, setCron] = useState("0 8 * * 1-5");
  const [params, setParams] = useState("{}");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const create = async (event) => {
    event.preventDefault();
    setError(null);
    let parsed;
    try {
      parsed = JSON.parse(params || "{}");
    } catch {
      return setError(new Error("Params must be JSON, like {} or {\"limit\": 20}."));
    }
    setBusy(true);
    try {
      await client.createSchedule({ job_type: jobType, params: parsed, ...(mode === "time" ? { time } : { cron }) });
      onCreated();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="card form-grid" onSubmit={create} aria-labelledby="new-schedule-title">
      <h2 id="new-schedule-title" class="full">New schedule</h2>
      <label>
        Job
        <select value={jobType} onChange={(e) => setJobType(e.currentTarget.value)}>
          {types.map((t) => <option key={t.type} value={t.type}>{jobLabel(t.type)}</option>)}
        </select>
      </label>
      <label>
        Repeat
        <select value={mode} onChange={(e) => setMode(e.currentTarget.value)}>
          <option value="time">Every day at</option>
          <option value="cron">On a cron</option>
        </select>
      </label>
      {mode === "time" ? (
        <label>
          Time
          <input type="time" value={time} required onInput={(e) => setTime(e.currentTarget.value)} />
        </label>
      ) : (
        <label>
          Cron
          <input value={cron} required placeholder="0 8 * * 1-5" onInput={(e) => setCron(e.currentTarget.value)} />
        </label>
      )}
      <label class="full">
        Params (JSON)
        <input value={params} onInput={(e) => setParams(e.currentTarget.value)} />
      </label>
      <div class="full">
        <ErrorNote error={error} />
        <button type="submit" disabled={busy}>Create schedule</button>
      </div>
    </form>
  );
}
