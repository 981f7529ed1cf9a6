import { useState } from "preact/hooks";
import { RRule } from "rrule";
import { client } from "../client.js";
import { Empty, ErrorNote, Loading, describe, formatWhen, isoToZoned, useLoad, zonedToIso } from "../ui.jsx";

const FILTERS = [
  { value: "open", label: "Open" },
  { value: "done", label: "Done" },
  { value: "all", label: "All" },
];

export function Tasks({ me }) {
  const [filter, setFilter] = useState("open");
  const tasks = useLoad(() => client.tasks({ status: filter, limit: 100 }), [filter]);

  return (
    <>
      <QuickAdd onAdded={tasks.reload} />
      <section class="card" aria-labelledby="tasks-title">
        <div class="card-head">
          <h1 id="tasks-title">Tasks</h1>
          <div class="segmented" role="group" aria-label="Show">
            {FILTERS.map((f) => (
              <button key={f.value} type="button" aria-pressed={filter === f.value} onClick={() => setFilter(f.value)}>
                {f.label}
              </button>
            ))}
          </div>
        </div>
        <ErrorNote error={tasks.error} onRetry={tasks.reload} />
        {tasks.loading && !tasks.data && <Loading label="Loading your tasks" />}
        {tasks.data && tasks.data.items.length === 0 && (
          <Empty title={filter === "done" ? "Nothing done yet" : "No tasks"}>
            Type something like “call mom tomorrow 5pm #family !high” above.
          </Empty>
        )}
        <ul class="tasks" aria-label="Tasks">
          {tasks.data?.items.map((task) => (
            // Keyed on updated_at too: a completed repeating task comes back open, with a new due date.
            <TaskItem key={`${task.id}:${task.updated_at}`} task={task} timeZone={me.timezone} onChange={tasks.reload} />
          ))}
        </ul>
      </section>
    </>
  );
}

function QuickAdd({ onAdded }) {
  const [text, setText] = useState("");
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);

  const add = async (event) => {
    event.preventDefault();
    if (!text.trim()) return;
    setError(null);
    setStatus("Adding…");
    try {
      const job = await client.submitAndWait("tasks.quick_add", { text: text.trim() }, {
        onUpdate: (j) => setStatus(j.progress_message || (j.status === "queued" ? "Queued…" : "Adding…")),
      });
      if (job.status !== "succeeded") throw new Error(job.error?.message || `The quick add ${job.status}.`);
      setText("");
      onAdded();
    } catch (e) {
      setError(e);
    } finally {
      setStatus(null);
    }
  };

  return (
    <form class="card quick-add" onSubmit={add}>
      <label class="grow">
        Quick add
        <input name="quick-add" value={text} placeholder="call mom tomorrow 5pm #family !high" autocomplete="off"
          onInput={(e) => setText(e.currentTarget.value)} />
      </label>
      <button type="submit" disabled={!!status || !text.trim()}>
        Add
      </button>
      {status && <p class="muted small full" role="status">{status}</p>}
      <ErrorNote error={error} />
    </form>
  );
}

// The common rules; anything else is typed as an RRULE (RFC 5545), which the API checks.
const REPEATS = [
  { value: "", label: "Does not repeat" },
  { value: "FREQ=DAILY", label: "Every day" },
  { value: "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", label: "Every weekday" },
  { value: "FREQ=WEEKLY", label: "Every week" },
  { value: "FREQ=MONTHLY", label: "Every month" },
  { value: "FREQ=YEARLY", label: "Every year" },
];

/** The rule in words ("every week on Monday"), by the rrule library; the rule itself if it cannot say. */
export function ruleInWords(rule) {
  try {
    return RRule.fromString(rule).toText();
  } catch {
    return rule;
  }
}

function RepeatForm({ task, busy, onSave, onCancel }) {
  const [rule, setRule] = useState(task.repeat || "");
  const save = (event) => {
    event.preventDefault();
    onSave({ repeat: rule.trim() || null });
  };
  return (
    <form class="row due-form" onSubmit={save}>
      <label>
        Repeats
        <select value={REPEATS.some((r) => r.value === rule) ? rule : "custom"}
          onChange={(e) => e.currentTarget.value !== "custom" && setRule(e.currentTarget.value)}>
          {REPEATS.map((r) => <option key={r.value} value={r.value}>{r.label}</option>)}
          <option value="custom">Custom rule</option>
        </select>
      </label>
      <label class="grow">
        Rule (RRULE)
        <input name="repeat" value={rule} placeholder="FREQ=WEEKLY;BYDAY=MO" maxLength={256} autocomplete="off"
          onInput={(e) => setRule(e.currentTarget.value)} />
      </label>
      {rule.trim() && <p class="muted small full" aria-live="polite">Repeats {ruleInWords(rule.trim())}</p>}
      <button type="submit" disabled={busy}>Save</button>
      <button type="button" class="secondary" onClick={onCancel}>Cancel</button>
    </form>
  );
}

function TaskItem({ task, timeZone, onChange }) {
  const [editing, setEditing] = useState(false);
  const [editingRepeat, setEditingRepeat] = useState(false);
  const [due, setDue] = useState(task.due_at ? isoToZoned(task.due_at, timeZone) : "");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(task.done); // shown at once; the list reloads after the API agrees

  const patch = async (change) => {
    setBusy(true);
    setError(null);
    try {
      await client.updateTask(task.id, change);
      setEditing(false);
      setEditingRepeat(false);
      onChange();
    } catch (e) {
      setDone(task.done);
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const toggle = (event) => {
    // A repeating task is not shown done: the API moves it to its next occurrence.
    if (!task.repeat || !event.currentTarget.checked) setDone(event.currentTarget.checked);
    patch({ done: event.currentTarget.checked });
  };

  const saveDue = (event) => {
    event.preventDefault();
    patch({ due_at: due ? zonedToIso(due, timeZone) : null });
  };

  const overdue = task.due_at && !done && Date.parse(task.due_at) < Date.now();
  return (
    <li class={`task${done ? " task-done" : ""}`}>
      <input type="checkbox" checked={done} disabled={busy} aria-label={`Done: ${task.title}`} onChange={toggle} />
      <div class="task-body">
        <span class="task-title">{task.title}</span>
        <span class="task-meta">
          {task.due_at && (
            <time dateTime={task.due_at} class={overdue ? "overdue" : ""}>
              {formatWhen(task.due_at, timeZone, { time: !task.all_day })}
            </time>
          )}
          {task.repeat && (
            <span class="repeat" title={task.repeat} aria-label={`Repeats ${ruleInWords(task.repeat)}`}>
              ↻ {ruleInWords(task.repeat)}
            </span>
          )}
          {task.priority !== "normal" && <span class={`badge badge-${task.priority}`}>{task.priority}</span>}
          {task.tags.map((tag) => (
            <span key={tag} class="tag">#{tag}</span>
          ))}
        </span>
        {editing && (
          <form class="row due-form" onSubmit={saveDue}>
            <label>
              Due date
              <input type="datetime-local" value={due} onInput={(e) => setDue(e.currentTarget.value)} />
            </label>
            <button type="submit" disabled={busy}>Save</button>
            <button type="button" class="secondary" onClick={() => setEditing(false)}>Cancel</button>
          </form>
        )}
        {editingRepeat && (
          <RepeatForm task={task} busy={busy} onSave={patch} onCancel={() => setEditingRepeat(false)} />
        )}
        {error && <p class="note note-error" role="alert">{describe(error)}</p>}
      </div>
      <div class="task-actions">
        {!editing && (
          <button type="button" class="secondary small" aria-label={`Edit due date of ${task.title}`}
            onClick={() => setEditing(true)}>
            {task.due_at ? "Change due date" : "Set due date"}
          </button>
        )}
        {!editingRepeat && (
          <button type="button" class="secondary small" aria-label={`Edit repeat of ${task.title}`}
            onClick={() => setEditingRepeat(true)}>
            {task.repeat ? "Repeats…" : "Repeat"}
          </button>
        )}
        <button type="button" class="ghost small" aria-label={`Delete ${task.title}`} disabled={busy}
          onClick={() => client.deleteTask(task.id).then(onChange, setError)}>
          ✕
        </button>
      </div>
    </li>
  );
}
