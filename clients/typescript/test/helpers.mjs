// Shared by the SDK's tests: the API under test, fresh users, and a fetch that counts calls.
import { randomUUID } from "node:crypto";

export const API_URL = process.env.API_URL;
if (!API_URL) {
  throw new Error("Set API_URL to a running API (make run: API_URL=http://127.0.0.1:8000 npm test).");
}

export const PASSWORD = "correct horse battery";

export function email(prefix = "sdk") {
  return `${prefix}-${randomUUID().slice(0, 8)}@example.com`;
}

/** A storage the test can read: where the SDK keeps the refresh token. */
export function visibleStorage() {
  const storage = { token: null, get: () => storage.token, set: (value) => void (storage.token = value) };
  return storage;
}

/** globalThis.fetch, recording each call's method, path and headers. */
export function recordingFetch(calls = []) {
  const fetcher = async (input, init) => {
    const request = new Request(input, init);
    calls.push({ method: request.method, path: new URL(request.url).pathname, headers: request.headers });
    return fetch(request);
  };
  fetcher.calls = calls;
  return fetcher;
}
