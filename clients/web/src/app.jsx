import { useEffect, useState } from "preact/hooks";
import { client, onSignedOut, signOutEverywhere } from "./client.js";
import { Link, navigate, usePath } from "./router.jsx";
import { Loading } from "./ui.jsx";
import { SignIn } from "./screens/signin.jsx";
import { ResetPassword } from "./screens/reset.jsx";
import { Tasks } from "./screens/tasks.jsx";
import { Agenda, Mail } from "./screens/google.jsx";
import { GoogleReturn } from "./screens/google_return.jsx";
import { Jobs } from "./screens/jobs.jsx";
import { Chat } from "./screens/chat.jsx";
import { Schedules } from "./screens/schedules.jsx";
import { Settings } from "./screens/settings.jsx";
import { Admin } from "./screens/admin.jsx";

const SCREENS = [
  { path: "/", label: "Tasks", screen: Tasks },
  { path: "/agenda", label: "Agenda", screen: Agenda },
  { path: "/mail", label: "Mail", screen: Mail },
  { path: "/assistant", label: "Chat", screen: Chat },
  { path: "/jobs", label: "Jobs", screen: Jobs },
  { path: "/schedules", label: "Schedules", screen: Schedules },
  { path: "/settings", label: "Settings", screen: Settings },
];

export function App() {
  const [me, setMe] = useState(undefined); // undefined: still finding out; null: signed out
  const path = usePath();

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        setMe((await client.hasSession()) ? await client.me() : null);
      } catch {
        if (live) setMe(null);
      }
    })();
    const stop = onSignedOut(() => setMe(null));
    return () => {
      live = false;
      stop();
    };
  }, []);

  if (path === "/reset") {
    // A reset link is opened signed in or out; afterwards every session has ended.
    return <ResetPassword onDone={() => { setMe(null); navigate("/", { replace: true }); }} />;
  }
  if (me === undefined) return <main class="center"><Loading label="Opening" /></main>;
  if (me === null) return <><StatusBanner /><SignIn onSignedIn={setMe} /></>;

  const signOut = async () => {
    await signOutEverywhere();
    setMe(null);
    navigate("/", { replace: true });
  };

  const screens = me.role === "admin" ? [...SCREENS, { path: "/admin", label: "Admin", screen: Admin }] : SCREENS;
  let page = screens.find((s) => s.path === path);
  if (path === "/google") page = { label: "Google", screen: GoogleReturn };
  if (path === "/admin" && !page) page = { label: "Admin", screen: Admin }; // says "not allowed"
  const Screen = page ? page.screen : NotFound;

  return (
    <div class="shell">
      <StatusBanner />
      <header class="topbar">
        <Link to="/" class="brand">
          <img src="/app/icon.svg" alt="" width="28" height="28" />
          <span>Assistant</span>
        </Link>
        <div class="who">
          <span class="muted who-email">{me.email}</span>
          <button type="button" class="secondary" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <nav class="tabs" aria-label="Main">
        {screens.map((s) => (
          <Link key={s.path} to={s.path} aria-current={s.path === path ? "page" : undefined}>
            {s.label}
          </Link>
        ))}
      </nav>
      <main class="content" id="main">
        <Screen me={me} setMe={setMe} signOut={signOut} />
      </main>
    </div>
  );
}

const STATUS_POLL_MS = 60_000;

// While an incident is open (`assistant status incident open ...`), every screen says so.
function StatusBanner() {
  const [incidents, setIncidents] = useState([]);
  useEffect(() => {
    let live = true;
    const load = async () => {
      try {
        const status = await client.getStatus();
        if (live) setIncidents(status.incidents ?? []);
      } catch {
        // the status page itself unreachable: the screens' own errors say enough
      }
    };
    load();
    const timer = setInterval(load, STATUS_POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  if (!incidents.length) return null;
  return (
    <div class="status-banner" role="status" aria-label="Service status">
      {incidents.map((incident) => (
        <p key={incident.id}>
          <strong>{incident.severity === "maintenance" ? "Maintenance" : "Incident"}:</strong> {incident.title}{" "}
          <a href="/status">Status page</a>
        </p>
      ))}
    </div>
  );
}

function NotFound() {
  return (
    <div class="card">
      <h1>Not found</h1>
      <p>
        This page does not exist. <Link to="/">Back to your tasks</Link>
      </p>
    </div>
  );
}
