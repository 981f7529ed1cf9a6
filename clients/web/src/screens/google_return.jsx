// Where Google's consent ends: the API's callback sends the browser here with ?link_code=,
// and this signed-in page completes the link (only the user who started it can).
import { useEffect, useState } from "preact/hooks";
import { client } from "../client.js";
import { Link } from "../router.jsx";
import { ErrorNote, Loading } from "../ui.jsx";

// What the page says for each error the callback can send back: fixed text, never the query's
// own (anyone can craft a link to this page with any ?error= they like).
const GOOGLE_ERRORS = {
  access_denied: "You declined on Google's consent screen; nothing was connected.",
  invalid_scope: "Google refused the access this app asks for; nothing was connected.",
  temporarily_unavailable: "Google is unavailable right now; try again in a few minutes.",
  server_error: "Google had an error; nothing was connected. Try again.",
  invalid_state: "This link is unknown or expired; start connecting Google again.",
};
const UNKNOWN_GOOGLE_ERROR = "Google did not grant access; nothing was connected.";

export function GoogleReturn() {
  const [state, setState] = useState({ done: false, error: null });

  useEffect(() => {
    const params = new URLSearchParams(location.search);
    const code = params.get("link_code");
    history.replaceState(null, "", location.pathname); // the code is single-use: keep it out of history
    if (params.get("error")) {
      const known = Object.hasOwn(GOOGLE_ERRORS, params.get("error"));
      setState({ done: false, error: new Error(known ? GOOGLE_ERRORS[params.get("error")] : UNKNOWN_GOOGLE_ERROR) });
    } else if (!code) {
      setState({ done: false, error: new Error("This page expects a link code from Google's consent screen.") });
    } else {
      client.completeGoogle(code).then(() => setState({ done: true, error: null }), (error) => setState({ done: false, error }));
    }
  }, []);

  return (
    <section class="card" aria-labelledby="google-title">
      <h1 id="google-title">Connecting Google</h1>
      {!state.done && !state.error && <Loading label="Finishing the connection" />}
      {state.done && <p class="note note-ok" role="status">Google is connected. Your calendar and mail are syncing now.</p>}
      <ErrorNote error={state.error} />
      <p>
        <Link to="/agenda">Go to your agenda</Link>
      </p>
    </section>
  );
}
