import { useEffect, useState } from "preact/hooks";
import { client } from "../client.js";
import { describe } from "../ui.jsx";

// The languages quick add reads; another browser language keeps the API's default (en-US).
const LANGUAGES = /^(en|de|fr|es)(-[A-Za-z0-9]{1,8})*$/i;

function browserLocale() {
  const tag = navigator.language || "";
  return LANGUAGES.test(tag) ? { locale: tag } : {};
}

export function SignIn({ onSignedIn }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(null);
  const [error, setError] = useState(null);
  const [canReset, setCanReset] = useState(false); // the server mails reset links (SMTP_URL)
  const [forgot, setForgot] = useState(false);

  useEffect(() => {
    client.passwordResetAvailable().then(setCanReset, () => setCanReset(false));
  }, []);

  if (forgot) return <ForgotPassword email={email} onBack={() => setForgot(false)} />;

  const go = async (creating) => {
    setBusy(creating ? "create" : "signin");
    setError(null);
    try {
      if (creating) {
        const timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
        await client.register(email, password, { timezone, ...browserLocale() });
      }
      onSignedIn(await client.login(email, password));
    } catch (e) {
      setError(e);
      setBusy(null);
    }
  };

  const submit = (event) => {
    event.preventDefault();
    go(false);
  };

  return (
    <main class="auth">
      <form class="card auth-card" onSubmit={submit} aria-labelledby="auth-title">
        <div class="brand brand-large">
          <img src="/app/icon.svg" alt="" width="40" height="40" />
          <span>Assistant</span>
        </div>
        <h1 id="auth-title">Sign in or create an account</h1>
        <p class="muted">Your tasks, agenda and mail, and an assistant that works through them with you.</p>
        <label>
          Email
          <input type="email" name="email" autocomplete="username" required value={email}
            onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input type="password" name="password" autocomplete="current-password" required minLength={8}
            value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        {error && (
          <p class="note note-error" role="alert">
            {error.code === "email_taken" ? "An account with this email exists: sign in instead." : describe(error)}
          </p>
        )}
        <div class="row">
          <button type="submit" disabled={!!busy}>
            {busy === "signin" ? "Signing in…" : "Sign in"}
          </button>
          <button type="button" class="secondary" disabled={!!busy || !email || password.length < 8}
            onClick={() => go(true)}>
            {busy === "create" ? "Creating…" : "Create account"}
          </button>
        </div>
        <p class="muted small">Passwords have at least 8 characters.</p>
        {canReset && (
          <button type="button" class="ghost small" onClick={() => setForgot(true)}>Forgot password?</button>
        )}
      </form>
    </main>
  );
}

function ForgotPassword({ email: given, onBack }) {
  const [email, setEmail] = useState(given);
  const [state, setState] = useState({ busy: false, error: null, sent: false });

  const send = async (event) => {
    event.preventDefault();
    setState({ busy: true, error: null, sent: false });
    try {
      await client.requestPasswordReset(email);
      setState({ busy: false, error: null, sent: true });
    } catch (error) {
      setState({ busy: false, error, sent: false });
    }
  };

  return (
    <main class="auth">
      <form class="card auth-card" onSubmit={send} aria-labelledby="forgot-title">
        <h1 id="forgot-title">Forgot your password?</h1>
        <p class="muted">We mail a link to this address if it has an account. The link works once, for 30 minutes.</p>
        <label>
          Email
          <input type="email" name="email" autocomplete="username" required value={email}
            onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        {state.sent && (
          <p class="note note-ok" role="status">
            If an account uses this address, a link to reset its password is on its way. Check your mail.
          </p>
        )}
        {state.error && <p class="note note-error" role="alert">{describe(state.error)}</p>}
        <div class="row">
          <button type="submit" disabled={state.busy}>Send reset link</button>
          <button type="button" class="secondary" onClick={onBack}>Back to sign in</button>
        </div>
      </form>
    </main>
  );
}
