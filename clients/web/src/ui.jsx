// Small pieces every screen uses: loading data, showing errors, empty states, dates.
import { useCallback, useEffect, useState } from "preact/hooks";

/** Loads `load()` now and whenever `deps` change; `reload` loads again. */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ loading: true, data: undefined, error: null });
  const reload = useCallback(async () => {
    setState((previous) => ({ ...previous, loading: true }));
    try {
      setState({ loading: false, data: await load(), error: null });
    } catch (error) {
      setState({ loading: false, data: undefined, error });
    }
  }, deps);
  useEffect(() => {
    reload();
  }, [reload]);
  return { ...state, reload };
}

/** What went wrong, in words a person can act on. */
export function describe(error) {
  if (!error) return "";
  if (error.name === "ApiError") {
    const fields = Object.entries(error.errors || {})
      .map(([field, problems]) => `${field.replaceAll("_", " ")}: ${[].concat(problems).join(" ")}`)
      .join("; ");
    // The API's own wording names its machinery ("see errors"): say what to fix instead.
    if (error.status === 422 || error.code === "validation_error") {
      return fields ? `Please check what you entered (${fields}).` : "Please check what you entered and try again.";
    }
    if (error.status === 429) return "Too many requests just now; wait a moment and try again.";
    if (error.status >= 500) return "Something went wrong on the server; try again in a moment.";
    return fields ? `${error.message} (${fields})` : error.message;
  }
  if (error.name === "TypeError") return "The server cannot be reached. Check your connection and try again.";
  return error.message || String(error);
}

export function ErrorNote({ error, onRetry }) {
  if (!error) return null;
  return (
    <div class="note note-error" role="alert">
      <span>{describe(error)}</span>
      {onRetry && (
        <button type="button" class="link" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }) {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children && <p class="muted">{children}</p>}
    </div>
  );
}

export function Loading({ label = "Loading" }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" />
      {label}…
    </p>
  );
}

export function Section({ title, actions, children, labelledBy }) {
  const id = labelledBy || `section-${title.toLowerCase().replace(/\W+/g, "-")}`;
  return (
    <section class="card" aria-labelledby={id}>
      <div class="card-head">
        <h2 id={id}>{title}</h2>
        {actions && <div class="card-actions">{actions}</div>}
      </div>
      {children}
    </section>
  );
}

export function StatusBadge({ status }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

export function Progress({ value, label }) {
  return (
    <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow={value} aria-label={label}>
      <div class="progress-bar" style={{ width: `${Math.max(2, value)}%` }} />
    </div>
  );
}

// -- dates, shown and edited in the user's own timezone (their profile's), not the browser's

const parts = (instant, timeZone) =>
  Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    })
      .formatToParts(new Date(instant))
      .map((part) => [part.type, part.value]),
  );

function offsetMs(instant, timeZone) {
  const p = parts(instant, timeZone);
  const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return wall - Math.floor(instant / 1000) * 1000;
}

/** "2026-12-01T17:00" read as a wall time in `timeZone` → an ISO instant. */
export function zonedToIso(local, timeZone) {
  const asUtc = Date.parse(`${local}:00Z`);
  let instant = asUtc - offsetMs(asUtc, timeZone);
  const second = offsetMs(instant, timeZone); // across a DST change the first guess is an hour off
  if (second !== asUtc - instant) instant = asUtc - second;
  return new Date(instant).toISOString();
}

/** An ISO instant → "2026-12-01T17:00" in `timeZone` (a datetime-local input's value). */
export function isoToZoned(iso, timeZone) {
  const p = parts(Date.parse(iso), timeZone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

export function formatWhen(iso, timeZone, { date = true, time = true } = {}) {
  if (!iso) return "";
  const options = { timeZone };
  if (date) Object.assign(options, { weekday: "short", day: "numeric", month: "short" });
  if (time) Object.assign(options, { hour: "2-digit", minute: "2-digit" });
  return new Intl.DateTimeFormat(undefined, options).format(new Date(iso));
}

export function formatDay(iso, timeZone) {
  return new Intl.DateTimeFormat(undefined, { timeZone, weekday: "long", day: "numeric", month: "long" }).format(new Date(iso));
}

export function ago(iso) {
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return `${Math.round(value)} s`;
  if (value < 3600) return `${Math.round(value / 60)} min`;
  return `${(value / 3600).toFixed(1)} h`;
}

export function bytes(value) {
  if (value < 1024) return `${value} B`;
  if (value < 1024 ** 2) return `${(value / 1024).toFixed(1)} KB`;
  return `${(value / 1024 ** 2).toFixed(1)} MB`;
}

export const JOB_LABELS = {
  "tasks.quick_add": "Quick add",
  "agent.assistant": "Assistant",
  "agent.plan_day": "Plan my day",
  "mail.triage": "Triage mail",
  "mail.draft_reply": "Draft a reply",
  "calendar.sync": "Calendar sync",
  "mail.sync": "Mail sync",
  "report.daily_digest": "Daily digest",
  "report.weekly_review": "Weekly review",
  "account.export": "Export my data",
  "account.delete": "Delete account",
  "calendar.create_event": "Create event",
  "mail.create_draft": "Save draft",
  "ops.backup": "Backup",
  "ops.verify_backup": "Verify backup",
  "ops.retention": "Retention",
};

export const jobLabel = (type) => JOB_LABELS[type] || type;
