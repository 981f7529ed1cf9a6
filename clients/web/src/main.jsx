import { render } from "preact";
import { App } from "./app.jsx";
import "./styles.css";

render(<App />, document.getElementById("root"));
