// Read-only copies of the user's calendar and mail, synced from Google by jobs.
import { useEffect, useRef, useState } from "preact/hooks";
import { client } from "../client.js";
import { Empty, ErrorNote, Loading, ago, formatDay, formatWhen, useLoad } from "../ui.jsx";

const DAYS_AHEAD = 7;
const FIRST_SYNC_POLL_MS = 2000;
const FIRST_SYNC_POLLS = 90; // three minutes; then the page waits for "Sync now" or a reload
export const RETURN_PATH = "/app/google";

export function ConnectGoogle({ integration, onChanged }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  const connect = async () => {
    setBusy(true);
    setError(null);
    try {
      // Google's redirect comes back to RETURN_PATH with ?link_code=, which this page completes.
      location.assign(await client.connectGoogle(location.origin + RETURN_PATH));
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  const syncNow = async () => {
    setBusy(true);
    setError(null);
    try {
      await Promise.all([client.submitAndWait("calendar.sync"), client.submitAndWait("mail.sync")]);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  if (!integration) return null;
  if (!integration.configured) {
    return <p class="note">Google is not set up on this server yet: an operator sets GOOGLE_CLIENT_ID and friends.</p>;
  }
  const connected = integration.status === "connected";
  return (
    <div class="connect">
      {connected ? (
        <p class="muted">
          Google connected{integration.calendar_synced_at ? `, synced ${ago(integration.calendar_synced_at)}` : ""}.
        </p>
      ) : (
        <p>
          {integration.status === "reauth_required"
            ? "Google stopped accepting our access: connect again."
            : "Connect your Google account to see your calendar and mail here."}
        </p>
      )}
      <div class="row">
        {!connected && (
          <button type="button" onClick={connect} disabled={busy}>
            Connect Google
          </button>
        )}
        {connected && (
          <button type="button" class="secondary" onClick={syncNow} disabled={busy}>
            {busy ? "Syncing…" : "Sync now"}
          </button>
        )}
      </div>
      <ErrorNote error={error} />
    </div>
  );
}

function useGoogle() {
  return useLoad(async () => (await client.integrations()).find((i) => i.provider === "google"), []);
}

/** Right after linking, the first sync is still running on a worker: ask again every few seconds
 * until it has landed (`<what>_synced_at` set), then show what it brought. */
function useFirstSync(google, field, onSynced) {
  const synced = google.data?.[field];
  const waiting = google.data?.status === "connected" && !synced;
  const wasWaiting = useRef(false);
  const polls = useRef(0);
  useEffect(() => {
    if (waiting && polls.current < FIRST_SYNC_POLLS) {
      wasWaiting.current = true;
      polls.current += 1;
      const timer = setTimeout(google.reload, FIRST_SYNC_POLL_MS);
      return () => clearTimeout(timer);
    }
    if (synced && wasWaiting.current) {
      wasWaiting.current = false;
      onSynced();
    }
  }, [waiting, synced, google.data]);
  return waiting;
}

export function Agenda({ me }) {
  const google = useGoogle();
  const events = useLoad(() => {
    const from = new Date();
    from.setHours(0, 0, 0, 0);
    const to = new Date(from.getTime() + DAYS_AHEAD * 86400000);
    return client.events({ from: from.toISOString(), to: to.toISOString(), limit: 100 });
  }, []);
  const firstSync = useFirstSync(google, "calendar_synced_at", events.reload);

  const byDay = new Map();
  for (const event of events.data?.items || []) {
    const day = formatDay(event.start, me.timezone);
    byDay.set(day, [...(byDay.get(day) || []), event]);
  }

  return (
    <section class="card" aria-labelledby="agenda-title">
      <div class="card-head">
        <h1 id="agenda-title">Agenda</h1>
        <span class="muted small">Next {DAYS_AHEAD} days</span>
      </div>
      <ConnectGoogle integration={google.data} onChanged={() => (google.reload(), events.reload())} />
      <ErrorNote error={events.error || google.error} onRetry={events.reload} />
      {events.loading && !events.data && <Loading label="Loading your agenda" />}
      {firstSync && <p class="muted" role="status">Fetching your calendar from Google…</p>}
      {events.data && events.data.items.length === 0 && !firstSync && (
        <Empty title="Nothing on your calendar">Events from your Google Calendar appear here after a sync.</Empty>
      )}
      {[...byDay].map(([day, items]) => (
        <div key={day} class="day">
          <h2 class="day-title">{day}</h2>
          <ul class="events" aria-label={day}>
            {items.map((event) => (
              <li key={event.id} class={`event${event.status === "cancelled" ? " cancelled" : ""}`}>
                <span class="event-time">
                  {event.all_day ? "All day" : `${formatWhen(event.start, me.timezone, { date: false })}–${formatWhen(event.end, me.timezone, { date: false })}`}
                </span>
                <span class="event-title">{event.summary || "(no title)"}</span>
                {event.location && <span class="muted small">{event.location}</span>}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </section>
  );
}

export function Mail({ me }) {
  const google = useGoogle();
  const [query, setQuery] = useState("");
  const [search, setSearch] = useState("");
  const messages = useLoad(() => client.messages({ limit: 50, ...(search ? { q: search } : {}) }), [search]);
  const firstSync = useFirstSync(google, "mail_synced_at", messages.reload);

  return (
    <section class="card" aria-labelledby="mail-title">
      <div class="card-head">
        <h1 id="mail-title">Mail</h1>
        <form class="row" role="search" onSubmit={(e) => (e.preventDefault(), setSearch(query.trim()))}>
          <label class="sr-only" for="mail-search">Search mail</label>
          <input id="mail-search" type="search" placeholder="Search mail" value={query}
            onInput={(e) => setQuery(e.currentTarget.value)} />
        </form>
      </div>
      <ConnectGoogle integration={google.data} onChanged={() => (google.reload(), messages.reload())} />
      <ErrorNote error={messages.error || google.error} onRetry={messages.reload} />
      {messages.loading && !messages.data && <Loading label="Loading your mail" />}
      {firstSync && <p class="muted" role="status">Fetching your mail from Google…</p>}
      {messages.data && messages.data.items.length === 0 && !firstSync && (
        <Empty title={search ? "No mail matches" : "No mail here yet"}>
          {search ? "Try other words." : "Your recent mail appears here after a sync."}
        </Empty>
      )}
      <ul class="mail" aria-label="Messages">
        {messages.data?.items.map((m) => (
          <li key={m.id} class={`message${m.labels.includes("UNREAD") ? " unread" : ""}`}>
            <div class="message-head">
              <span class="message-from">{m.from}</span>
              <time class="muted small" dateTime={m.date}>{formatWhen(m.date, me.timezone)}</time>
            </div>
            <span class="message-subject">{m.subject || "(no subject)"}</span>
            <span class="muted small message-snippet">{m.snippet}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
