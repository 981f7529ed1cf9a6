// The one SDK client of the page. The access token stays in memory; the refresh token is
// kept in IndexedDB so a reload stays signed in, and every refresh runs under a lock
// shared by the tabs (navigator.locks): two tabs rotating one refresh token would look
// like a stolen token to the API, which would end the session. IndexedDB, not
// localStorage: a tab may read a stale localStorage value for a moment after another tab
// wrote it, while an IndexedDB read sees every committed write (the lock holder's).
import { createClient } from "@personal-assistant/sdk";
import { del, get, set } from "idb-keyval";

const KEY = "assistant.refresh_token";
// The push device this browser registered: deleted at sign-out, so whoever signs in next on
// this browser does not get this account's notifications.
const DEVICE_KEY = "assistant.device_id";
const listeners = new Set();
// Tells the other tabs that the session ended here (sign-out, or a refused refresh).
const tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel("assistant-session") : null;

const storage = {
  get: async () => (await get(KEY)) ?? null,
  set: (token) => (token ? set(KEY, token) : del(KEY)),
};

const lock = (fn) => (navigator.locks ? navigator.locks.request("assistant-token-refresh", fn) : fn());

const signedOut = () => listeners.forEach((listener) => listener());

export const client = createClient({
  baseUrl: location.origin,
  storage,
  lock,
  onSignedOut: () => {
    tabs?.postMessage("signed-out");
    signedOut();
  },
});

/** Remembers the push device registered in this browser (see signOutEverywhere). */
export function rememberDevice(deviceId) {
  return set(DEVICE_KEY, deviceId);
}

/** Signs out here and in the other tabs, deleting this browser's push device first. */
export async function signOutEverywhere() {
  const deviceId = (await get(DEVICE_KEY)) ?? null;
  await client.logout({ deviceId }).catch(() => {});
  await del(DEVICE_KEY);
  tabs?.postMessage("signed-out");
}

/** Calls `listener` when the session ends (a refused refresh, or sign-out in another tab). */
export function onSignedOut(listener) {
  listeners.add(listener);
  const fromOtherTab = async (event) => {
    if (event.data !== "signed-out") return;
    await client.setTokens({ access_token: null, refresh_token: null });
    listener();
  };
  tabs?.addEventListener("message", fromOtherTab);
  return () => {
    listeners.delete(listener);
    tabs?.removeEventListener("message", fromOtherTab);
  };
}
