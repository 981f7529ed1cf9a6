// Profile (timezone, language and date order, digest time), password, memory (facts the
// assistant uses), devices for notifications, export and account deletion.
import { useState } from "preact/hooks";
import { client, rememberDevice } from "../client.js";
import { ErrorNote, Loading, Section, describe, useLoad } from "../ui.jsx";

export function Settings({ me, setMe, signOut }) {
  return (
    <>
      <h1 class="page-title">Settings</h1>
      <Profile me={me} setMe={setMe} />
      <ChangePassword />
      <Memory />
      <Devices />
      <Export />
      <DeleteAccount me={me} signOut={signOut} />
    </>
  );
}

function zones(current) {
  const all = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return all.includes(current) ? all : [current, ...all];
}

// The locales offered; the API takes any region of these languages (a browser's en-IE stays).
const LOCALES = [
  ["en-US", "English (US): 8/10 is August 10"],
  ["en-GB", "English (UK): 8/10 is 10 August"],
  ["de-DE", "Deutsch"],
  ["fr-FR", "Français"],
  ["es-ES", "Español"],
];

function Profile({ me, setMe }) {
  const [timezone, setTimezone] = useState(me.timezone);
  const [locale, setLocale] = useState(me.locale);
  const [digest, setDigest] = useState(me.digest_time);
  const [state, setState] = useState({ busy: false, error: null, saved: false });

  const save = async (event) => {
    event.preventDefault();
    setState({ busy: true, error: null, saved: false });
    try {
      setMe(await client.updateMe({ timezone, locale, digest_time: digest }));
      setState({ busy: false, error: null, saved: true });
    } catch (error) {
      setState({ busy: false, error, saved: false });
    }
  };

  return (
    <Section title="Profile">
      <form class="form-grid" onSubmit={save}>
        <label>
          Timezone
          <select value={timezone} onChange={(e) => setTimezone(e.currentTarget.value)}>
            {zones(me.timezone).map((zone) => <option key={zone} value={zone}>{zone}</option>)}
          </select>
        </label>
        <label>
          Language and date order
          <select value={locale} onChange={(e) => setLocale(e.currentTarget.value)}>
            {(LOCALES.some(([tag]) => tag === me.locale) ? LOCALES : [[me.locale, me.locale], ...LOCALES]).map(
              ([tag, label]) => <option key={tag} value={tag}>{label}</option>)}
          </select>
        </label>
        <label>
          Daily digest at
          <input type="time" value={digest} required onInput={(e) => setDigest(e.currentTarget.value)} />
        </label>
        <div class="full row">
          <button type="submit" disabled={state.busy}>Save</button>
          {state.saved && <span class="muted small" role="status">Saved.</span>}
        </div>
        <div class="full"><ErrorNote error={state.error} /></div>
      </form>
    </Section>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [state, setState] = useState({ busy: false, error: null, done: false });

  const change = async (event) => {
    event.preventDefault();
    setState({ busy: true, error: null, done: false });
    try {
      await client.changePassword(current, next);
      setCurrent("");
      setNext("");
      setState({ busy: false, error: null, done: true });
    } catch (error) {
      setState({ busy: false, error, done: false });
    }
  };

  return (
    <Section title="Password">
      <form class="form-grid" onSubmit={change}>
        <label>
          Current password
          <input type="password" autocomplete="current-password" required value={current}
            onInput={(e) => setCurrent(e.currentTarget.value)} />
        </label>
        <label>
          New password
          <input type="password" autocomplete="new-password" required minLength={8} value={next}
            onInput={(e) => setNext(e.currentTarget.value)} />
        </label>
        <div class="full row">
          <button type="submit" disabled={state.busy}>Change password</button>
          {state.done && (
            <span class="muted small" role="status">Password changed. Your other sign-ins were ended.</span>
          )}
        </div>
        {state.error && (
          <p class="full note note-error" role="alert">
            {state.error.code === "wrong_password" ? "The current password is wrong." : describe(state.error)}
          </p>
        )}
      </form>
    </Section>
  );
}

function base64UrlToBytes(value) {
  const padded = (value + "=".repeat((4 - (value.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/");
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

// Facts the assistant reads ("my manager is Dana"). The user writes them here; the assistant
// only proposes one, which appears here once approved.
function Memory() {
  const memories = useLoad(() => client.memories({ limit: 100 }), []);
  const [text, setText] = useState("");
  const [state, setState] = useState({ busy: false, error: null });

  const run = async (action) => {
    setState({ busy: true, error: null });
    try {
      await action();
      setState({ busy: false, error: null });
      memories.reload();
    } catch (error) {
      setState({ busy: false, error });
    }
  };
  const add = (event) => {
    event.preventDefault();
    const value = text.trim();
    if (value) run(async () => (await client.createMemory(value), setText("")));
  };

  return (
    <Section title="Memory">
      <p class="muted">Short facts the assistant uses, such as “my manager is Dana” or “no meetings before 10”.</p>
      {memories.loading && <Loading label="Loading your memories" />}
      <ErrorNote error={memories.error} onRetry={memories.reload} />
      {memories.data && memories.data.items.length === 0 && <p class="muted">Nothing yet.</p>}
      <ul class="memories" aria-label="Memories">
        {memories.data?.items.map((m) => (
          <li key={m.id}>
            <span class="grow">{m.text}</span>
            {m.source?.kind === "job" && <span class="badge">from the assistant</span>}
            <button type="button" class="ghost small" aria-label={`Forget “${m.text}”`}
              onClick={() => run(() => client.deleteMemory(m.id))}>Forget</button>
          </li>
        ))}
      </ul>
      <form class="row" onSubmit={add}>
        <label class="grow">
          <span class="sr-only">New memory</span>
          <input name="memory" placeholder="Something the assistant should know" maxLength={500} value={text}
            onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={state.busy || !text.trim()}>Remember</button>
      </form>
      <ErrorNote error={state.error} />
    </Section>
  );
}

function Devices() {
  const devices = useLoad(() => client.devices(), []);
  const [state, setState] = useState({ busy: false, error: null });
  // Offered only when this browser can and the server sends Web Push (it has a VAPID key).
  const pushKey = useLoad(() => client.webPushKey().catch(() => null), []);
  const supported = "serviceWorker" in navigator && "PushManager" in window && Boolean(pushKey.data);

  const enable = async () => {
    setState({ busy: true, error: null });
    try {
      const key = await client.webPushKey();
      if (!key) throw new Error("This server does not send Web Push notifications.");
      if ((await Notification.requestPermission()) !== "granted") throw new Error("Notifications are blocked for this site.");
      const registration = await navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" });
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: base64UrlToBytes(key),
      });
      const device = await client.registerDevice({ platform: "webpush", token: subscription.toJSON(), name: browserName() });
      await rememberDevice(device.id);
      setState({ busy: false, error: null });
      devices.reload();
    } catch (error) {
      setState({ busy: false, error });
    }
  };

  const remove = (id) => client.deleteDevice(id).then(devices.reload, (error) => setState({ busy: false, error }));

  return (
    <Section title="Devices">
      {devices.loading && <Loading label="Loading your devices" />}
      <ErrorNote error={devices.error} onRetry={devices.reload} />
      {devices.data === null && (
        <p class="note" role="status">Notifications are not available on this server yet.</p>
      )}
      {devices.data && (
        <>
          <p class="muted">Devices that get reminders and “your job is done” notifications.</p>
          {devices.data.items.length === 0 && <p class="muted">No devices yet.</p>}
          <ul class="devices" aria-label="Devices">
            {devices.data.items.map((d) => (
              <li key={d.id} class="row">
                <span class="grow">{d.name || (d.platform === "webpush" ? "A browser" : "A phone")}</span>
                <span class="badge">{d.platform}</span>
                <button type="button" class="ghost small" onClick={() => remove(d.id)}>Remove</button>
              </li>
            ))}
          </ul>
          {supported ? (
            <button type="button" onClick={enable} disabled={state.busy}>Enable notifications in this browser</button>
          ) : (
            <p class="muted small">{pushKey.loading ? "" : pushKey.data ? "This browser cannot receive push notifications."
              : "This server does not send push notifications."}</p>
          )}
        </>
      )}
      <ErrorNote error={state.error} />
    </Section>
  );
}

function browserName() {
  const agent = navigator.userAgent;
  const name = /Firefox/.test(agent) ? "Firefox" : /Edg\//.test(agent) ? "Edge" : /Chrome|Chromium/.test(agent) ? "Chrome" : /Safari/.test(agent) ? "Safari" : "Browser";
  return `${name} on ${navigator.platform || "this computer"}`;
}

function Export() {
  const [state, setState] = useState({ busy: false, error: null, job: null });

  const run = async () => {
    setState({ busy: true, error: null, job: null });
    try {
      const job = await client.submitAndWait("account.export", {});
      if (job.status !== "succeeded") throw new Error(job.error?.message || `The export ${job.status}.`);
      setState({ busy: false, error: null, job });
    } catch (error) {
      setState({ busy: false, error, job: null });
    }
  };

  return (
    <Section title="Your data">
      <p class="muted">A zip of everything we keep about you, one JSON file per kind of record.</p>
      <div class="row">
        <button type="button" class="secondary" onClick={run} disabled={state.busy}>
          {state.busy ? "Preparing…" : "Export my data"}
        </button>
        {state.job && <a href={state.job.result.artifact_url} download>Download the export</a>}
      </div>
      <ErrorNote error={state.error} />
    </Section>
  );
}

function DeleteAccount({ me, signOut }) {
  const [confirming, setConfirming] = useState(false);
  const [typed, setTyped] = useState("");
  const [state, setState] = useState({ busy: false, error: null });

  const erase = async (event) => {
    event.preventDefault();
    setState({ busy: true, error: null });
    try {
      const job = await client.submitAndWait("account.delete", {});
      if (job.status !== "succeeded") throw new Error(job.error?.message || `The deletion ${job.status}.`);
      await signOut();
    } catch (error) {
      setState({ busy: false, error });
    }
  };

  return (
    <Section title="Delete account">
      <p class="muted">Erases your account, tasks, schedules, synced mail and calendar, and disconnects Google. It cannot be undone.</p>
      {!confirming ? (
        <button type="button" class="danger" onClick={() => setConfirming(true)}>Delete my account…</button>
      ) : (
        <form class="form-grid" onSubmit={erase}>
          <label class="full">
            Type your email to confirm
            <input value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autocomplete="off" />
          </label>
          <div class="full row">
            <button type="submit" class="danger" disabled={state.busy || typed.trim().toLowerCase() !== me.email}>
              {state.busy ? "Deleting…" : "Delete my account"}
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(false)}>Keep it</button>
          </div>
        </form>
      )}
      {state.error && <p class="note note-error" role="alert">{describe(state.error)}</p>}
    </Section>
  );
}
