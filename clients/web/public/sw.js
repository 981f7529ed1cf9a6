// Shows the API's Web Push notifications (a reminder, a finished job, an action to approve).
self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  const title = data.title || (data.notification && data.notification.title) || "Assistant";
  const body = data.body || (data.notification && data.notification.body) || "";
  const target = data.task_id ? "/app/" : data.job_id ? "/app/jobs" : "/app/";
  event.waitUntil(self.registration.showNotification(title, { body, data: { target }, icon: "/app/icon.svg" }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.target || "/app/"));
});
