// Where Google's consent ends: the API's callback sends the browser here with ?link_code=,
// and this signed-in page completes the link (only the user who started it can).
import { useEffect, useState } from "preact/hooks";
import { client } from "../client.js";
import { Link } from "../router.jsx";
import { ErrorNote, Loading } from "../ui.jsx";

export function GoogleReturn() {
  const [state, setState] = useState({ done: false, error: null });

  useEffect(() => {
    const params = new URLSearchParams(location.search);
    const code = params.get("link_code");
    history.replaceState(null, "", location.pathname); // the code is single-use: keep it out of history
    if (params.get("error")) {
      setState({ done: false, error: new Error(`Google answered "${params.get("error")}"; nothing was connected.`) });
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
