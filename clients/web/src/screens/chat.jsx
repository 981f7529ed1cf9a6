// The assistant: a conversation (agent.assistant jobs on a thread) with approve/reject on
// what it proposes (calendar events, mail drafts): nothing leaves our database unapproved.
import { useEffect, useRef, useState } from "preact/hooks";
import { client } from "../client.js";
import { Empty, ErrorNote, Loading, describe, useLoad } from "../ui.jsx";

export function Chat() {
  const types = useLoad(() => client.jobTypes(), []);
  const threads = useLoad(() => client.threads(), []);
  const [threadId, setThreadId] = useState(null);
  const [messages, setMessages] = useState([]);
  const [actions, setActions] = useState({}); // job id -> its proposed actions
  const [text, setText] = useState("");
  const [pending, setPending] = useState(null);
  const [error, setError] = useState(null);
  const end = useRef(null);

  useEffect(() => end.current?.scrollIntoView?.({ block: "end" }), [messages, pending]);

  const open = async (id) => {
    setError(null);
    setThreadId(id);
    if (!id) return (setMessages([]), setActions({}));
    try {
      const thread = await client.thread(id);
      const ordered = [...thread.items].reverse();
      setMessages(ordered);
      const jobs = [...new Set(ordered.filter((m) => m.role === "assistant" && m.job_id).map((m) => m.job_id))].slice(-10);
      const found = await Promise.all(jobs.map(async (jobId) => [jobId, await client.actions(jobId)]));
      setActions(Object.fromEntries(found));
    } catch (e) {
      setError(e);
    }
  };

  // The answer as it is written: its text, the tool steps and the proposals so far, from the
  // job's live events. A dropped connection resumes from the last event (no text twice); an
  // `attempt` (a retry started) starts the text again.
  const [live, setLive] = useState(null);
  const running = useRef(null);

  const onEvent = (event) => {
    setLive((now) => {
      if (!now) return now;
      switch (event.type) {
        case "token":
          return { ...now, text: now.text + event.data.text };
        case "snapshot":
          return { ...now, text: event.data.text, proposals: event.data.actions };
        case "attempt":
          return { ...now, text: "", steps: [], proposals: [] };
        case "tool":
          return event.data.phase === "started" ? { ...now, steps: [...now.steps, event.data.message] } : now;
        case "action":
          return { ...now, proposals: [...now.proposals, event.data] };
        case "progress":
          return { ...now, status: event.data.message || now.status };
        default:
          return now;
      }
    });
  };

  const send = async (event) => {
    event.preventDefault();
    const message = text.trim();
    if (!message) return;
    setError(null);
    setText("");
    setMessages((list) => [...list, { id: `local-${Date.now()}`, role: "user", content: message }]);
    setPending("Thinking…");
    try {
      const job = await client.submit("agent.assistant", threadId ? { message, thread_id: threadId } : { message });
      running.current = job.id;
      setLive({ jobId: job.id, text: "", steps: [], proposals: [], status: "Thinking…" });
      const done = await client.streamJob(job.id, { onEvent });
      setLive(null); // the saved answer and its approvable proposals replace the live one
      if (done.data.status === "canceled") return;
      const finished = await client.job(job.id);
      if (finished.status !== "succeeded") {
        throw new Error(finished.error?.message || "The assistant could not answer this time; try again.");
      }
      const id = finished.result.thread_id;
      if (id !== threadId) threads.reload();
      await open(id);
    } catch (e) {
      setError(e);
    } finally {
      running.current = null;
      setLive(null);
      setPending(null);
    }
  };

  const stop = async () => {
    const jobId = running.current;
    if (!jobId) return;
    try {
      await client.cancel(jobId); // the stream then ends with done: canceled
    } catch (e) {
      if (e.status !== 409) setError(e); // 409: it had just finished
    }
  };

  const agent = types.data?.find((t) => t.type === "agent.assistant");
  return (
    <div class="chat-layout">
      <aside class="card threads" aria-labelledby="threads-title">
        <div class="card-head">
          <h2 id="threads-title">Conversations</h2>
          <button type="button" class="secondary small" onClick={() => open(null)}>New</button>
        </div>
        <ErrorNote error={threads.error} onRetry={threads.reload} />
        {threads.data && threads.data.items.length === 0 && <p class="muted small">None yet.</p>}
        <ul aria-label="Conversations">
          {threads.data?.items.map((t) => (
            <li key={t.id}>
              <button type="button" class="ghost thread-link" aria-current={t.id === threadId ? "true" : undefined}
                onClick={() => open(t.id)}>
                {t.title || "Conversation"}
              </button>
            </li>
          ))}
        </ul>
      </aside>
      <section class="card chat" aria-labelledby="chat-title">
        <h1 id="chat-title">Assistant</h1>
        {types.loading && <Loading />}
        {agent && !agent.available && (
          <p class="note">The assistant is not configured on this server (an operator sets OPENAI_API_KEY).</p>
        )}
        <ol class="messages" aria-label="Conversation" aria-live="polite">
          {messages.length === 0 && !pending && (
            <Empty title="Ask for anything">“Remind me to call mom tomorrow at 5pm”, “what is on my plate this week?”</Empty>
          )}
          {messages.map((m) => (
            <li key={m.id} class={`bubble bubble-${m.role}`}>
              <span class="sr-only">{m.role === "user" ? "You:" : "Assistant:"}</span>
              <p>{m.content}</p>
              {m.role === "assistant" && m.job_id && actions[m.job_id]?.map((action) => (
                <ActionCard key={action.id} action={action}
                  onDecided={(changed) => setActions((all) => ({
                    ...all, [m.job_id]: all[m.job_id].map((a) => (a.id === changed.id ? changed : a)),
                  }))} />
              ))}
            </li>
          ))}
          {live && (
            <li class="bubble bubble-assistant live" aria-label="Answer so far">
              <span class="sr-only">Assistant:</span>
              {live.steps.length > 0 && (
                <ul class="steps small muted" aria-label="Steps">
                  {live.steps.map((step, i) => <li key={i}>{step}</li>)}
                </ul>
              )}
              {live.text ? <p data-testid="live-answer">{live.text}</p> : <p class="muted" role="status">{live.status}</p>}
              {live.proposals.map((p) => (
                <div key={p.action_id} class="action" role="group" aria-label={`Proposed: ${p.summary}`}>
                  <p class="action-summary"><span class="badge">{p.type === "calendar.create_event" ? "Event" : "Draft"}</span> {p.summary}</p>
                  <p class="small muted">You can approve this once the answer is complete.</p>
                </div>
              ))}
            </li>
          )}
          {pending && !live && <li class="bubble bubble-assistant pending" role="status">{pending}</li>}
          <li ref={end} aria-hidden="true" />
        </ol>
        <ErrorNote error={error} />
        <form class="row composer" onSubmit={send}>
          <label class="grow">
            <span class="sr-only">Message</span>
            <input name="message" placeholder="Message the assistant" value={text} autocomplete="off"
              aria-label="Message" disabled={agent && !agent.available}
              onInput={(e) => setText(e.currentTarget.value)} />
          </label>
          {live ? (
            <button type="button" class="secondary" onClick={stop}>Stop</button>
          ) : (
            <button type="submit" disabled={!!pending || !text.trim()}>Send</button>
          )}
        </form>
      </section>
    </div>
  );
}

function ActionCard({ action, onDecided }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const decide = async (approve) => {
    setBusy(true);
    setError(null);
    try {
      if (approve) {
        await client.approve(action.job_id, action.id);
        onDecided({ ...action, status: "approved" });
      } else {
        onDecided(await client.reject(action.job_id, action.id));
      }
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="action" role="group" aria-label={`Proposed: ${action.summary}`}>
      <p class="action-summary">
        <span class="badge">{action.type === "calendar.create_event" ? "Event" : "Draft"}</span> {action.summary}
      </p>
      {action.status === "proposed" ? (
        <div class="row">
          <button type="button" disabled={busy} onClick={() => decide(true)}>Approve</button>
          <button type="button" class="secondary" disabled={busy} onClick={() => decide(false)}>Reject</button>
        </div>
      ) : (
        <p class="small muted" role="status">{action.status === "approved" ? "Approved" : "Rejected"}</p>
      )}
      {error && <p class="note note-error" role="alert">{describe(error)}</p>}
    </div>
  );
}
