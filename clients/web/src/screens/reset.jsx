// Where a reset mail's link lands: /app/reset#token=... (the token in the fragment never
// reaches a server log or a Referer). Works signed in or out; afterwards every sign-in of
// the account has ended, this browser's too.
import { useState } from "preact/hooks";
import { client } from "../client.js";
import { describe } from "../ui.jsx";

function tokenFromLink() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) history.replaceState(null, "", location.pathname); // single-use: keep it out of history
  return token;
}

export function ResetPassword({ onDone }) {
  const [token] = useState(tokenFromLink);
  const [password, setPassword] = useState("");
  const [state, setState] = useState({ busy: false, error: null, done: false });

  const save = async (event) => {
    event.preventDefault();
    setState({ busy: true, error: null, done: false });
    try {
      await client.confirmPasswordReset(token, password);
      await client.setTokens({ access_token: null, refresh_token: null });
      setState({ busy: false, error: null, done: true });
    } catch (error) {
      setState({ busy: false, error, done: false });
    }
  };

  return (
    <main class="auth">
      <form class="card auth-card" onSubmit={save} aria-labelledby="reset-title">
        <h1 id="reset-title">Reset your password</h1>
        {!token && <p class="note note-error" role="alert">This page needs the link from your reset mail.</p>}
        {token && !state.done && (
          <>
            <label>
              New password
              <input type="password" autocomplete="new-password" required minLength={8} value={password}
                onInput={(e) => setPassword(e.currentTarget.value)} />
            </label>
            <button type="submit" disabled={state.busy}>Set new password</button>
          </>
        )}
        {state.done && (
          <p class="note note-ok" role="status">Your password was changed. Sign in with the new one.</p>
        )}
        {state.error && (
          <p class="note note-error" role="alert">
            {state.error.code === "invalid_reset_token"
              ? "This link is invalid, used or expired. Ask for a new one from the sign-in page."
              : describe(state.error)}
          </p>
        )}
        {(state.done || !token || state.error) && (
          <button type="button" class="secondary" onClick={onDone}>Go to sign in</button>
        )}
      </form>
    </main>
  );
}
