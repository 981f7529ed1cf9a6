// Devices for pushes, as an app registers its FCM token (PRODUCT.md "Notifications").
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { ApiError, createClient } from "../dist/index.js";
import { API_URL, PASSWORD, email } from "./helpers.mjs";

test("register a phone, register it again, list it, remove it", async () => {
  const client = createClient({ baseUrl: API_URL });
  const address = email("devices");
  await client.register(address, PASSWORD);
  await client.login(address, PASSWORD);
  const token = `fcm-${randomUUID()}-${randomUUID()}`;

  const phone = await client.registerDevice({ platform: "fcm", token, name: "Pixel" });
  assert.equal(phone.platform, "fcm");
  assert.equal(phone.name, "Pixel");
  const again = await client.registerDevice({ platform: "fcm", token, name: "Pixel 8" });
  assert.equal(again.id, phone.id); // the same token updates its device
  const page = await client.devices();
  assert.deepEqual(page.items.map((d) => [d.id, d.name]), [[phone.id, "Pixel 8"]]);
  assert.equal("token" in page.items[0], false);

  await client.deleteDevice(phone.id);
  assert.deepEqual((await client.devices()).items, []);
  await assert.rejects(client.deleteDevice(phone.id), (error) => error instanceof ApiError && error.status === 404);
  await assert.rejects(client.registerDevice({ platform: "fcm", token: "x" }),
    (error) => error instanceof ApiError && error.status === 422);
  // The test API runs without a VAPID key: no Web Push, said as null rather than an error.
  assert.equal(await client.webPushKey(), null);
});

test("signing out with the device id deletes the device: the next account on this phone gets no pushes of it", async () => {
  const client = createClient({ baseUrl: API_URL });
  const address = email("signout");
  await client.register(address, PASSWORD);
  await client.login(address, PASSWORD);
  const phone = await client.registerDevice({ platform: "fcm", token: `fcm-${randomUUID()}-${randomUUID()}` });

  await client.logout({ deviceId: phone.id });

  await client.login(address, PASSWORD);
  assert.deepEqual((await client.devices()).items, []);
});

test("a password change keeps this session; a reset request answers the same for any address", async () => {
  const client = createClient({ baseUrl: API_URL });
  const address = email("password");
  await client.register(address, PASSWORD);
  await client.login(address, PASSWORD);
  await assert.rejects(client.changePassword("wrong-password", "n3w-passw0rd"),
    (error) => error instanceof ApiError && error.code === "wrong_password");
  await client.changePassword(PASSWORD, "n3w-passw0rd");
  assert.equal((await client.me()).email, address);
  await client.requestPasswordReset(address);
  await client.requestPasswordReset(email("nobody"));
  assert.equal(typeof (await client.passwordResetAvailable()), "boolean");
  await assert.rejects(client.confirmPasswordReset("not-a-token", "n3w-passw0rd"),
    (error) => error instanceof ApiError && error.code === "invalid_reset_token");
});
