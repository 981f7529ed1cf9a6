import { useState } from "preact/hooks";
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
      </form>
    </main>
  );
}
