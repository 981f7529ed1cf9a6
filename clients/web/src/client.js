// The one SDK client of the page. The access token stays in memory; the refresh token is
// kept in localStorage so a reload stays signed in, and every refresh runs under a lock
// shared by the tabs (navigator.locks): two tabs rotating one refresh token would look
// like a stolen token to the API, which would end the session.
import { createClient } from "@personal-assistant/sdk";

const KEY = "assistant.refresh_token";
const listeners = new Set();

const storage = {
  get: () => localStorage.getItem(KEY),
  set: (token) => (token ? localStorage.setItem(KEY, token) : localStorage.removeItem(KEY)),
};

const lock = (fn) => (navigator.locks ? navigator.locks.request("assistant-token-refresh", fn) : fn());

export const client = createClient({
  baseUrl: location.origin,
  storage,
  lock,
  onSignedOut: () => listeners.forEach((listener) => listener()),
});

/** Calls `listener` when the session ends (a refused refresh, or sign-out in another tab). */
export function onSignedOut(listener) {
  listeners.add(listener);
  const fromOtherTab = (event) => event.key === KEY && !event.newValue && listener();
  addEventListener("storage", fromOtherTab);
  return () => {
    listeners.delete(listener);
    removeEventListener("storage", fromOtherTab);
  };
}
