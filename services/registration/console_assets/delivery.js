// One delivery: the body as sent, every attempt (status code, error, duration, time, the
// endpoint's answer, all shown as text), its ordering key and what it waits behind, live;
// and `Redeliver`.

import { api, ApiError } from "./api.js";
import { facts, h, jsonText, notice, say, statusBadge, textBlock, time } from "./dom.js";
import { every } from "./polling.js";

const REFRESH_MS = 1000;

export async function deliveryScreen(view, deliveryId) {
  const [delivery, body] = await Promise.all([
    api("GET", `/delivery/${deliveryId}`).then((e) => e.data),
    api("GET", `/delivery/${deliveryId}/body`).then((e) => e.data.body),
  ]);
  const summary = h("div");
  const attempts = h("ol", { class: "attempts", reversed: true });
  const status = notice();
  let shown = "";

  function draw(current) {
    const text = JSON.stringify(current);
    if (text === shown) return;
    shown = text;
    summary.replaceChildren(facts([
      ["Id", h("code", {}, current.id)],
      ["Webhook", h("a", { href: `#/webhooks/${current.webhook_id}` }, h("code", {}, current.webhook_id))],
      ["Status", statusBadge(current.status)],
      ["Attempts", String(current.attempt_count)],
      ["Next retry", time(current.next_retry_at)],
      ["Ordering key", current.ordering_key === null ? "none" : h("code", {}, current.ordering_key)],
      ["Waiting for", waitingFor(current.waiting_for)],
      ["Created", time(current.created_at)],
      ["Updated", time(current.updated_at)],
    ]));
    // Newest first: the one just made is where the eye is.
    attempts.replaceChildren(...[...current.attempts].reverse().map(attemptItem));
    if (current.attempts.length === 0) attempts.replaceChildren(h("li", {}, "No attempt yet."));
  }

  async function refresh() {
    draw((await api("GET", `/delivery/${deliveryId}`)).data);
  }

  async function redeliver() {
    try {
      await api("POST", `/delivery/${deliveryId}/redeliver`);
      say(status, "Redelivery requested: the new attempt appears below.");
      await refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      say(status, error.message, true);
    }
  }

  draw(delivery);
  view.render(
    h("h1", { tabindex: "-1" }, "Delivery ", h("code", {}, deliveryId.slice(0, 8))),
    h("p", {}, h("a", { href: `#/webhooks/${delivery.webhook_id}` }, "← Its webhook")),
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: redeliver }, "Redeliver")),
    status,
    summary,
    h("section", { "aria-labelledby": "body-title" }, h("h2", { id: "body-title" }, "Body as sent"), textBlock(jsonText(body), { class: "body" })),
    h("section", { "aria-labelledby": "attempts-title" }, h("h2", { id: "attempts-title" }, "Attempts"), attempts),
  );
  every(REFRESH_MS, refresh);
}

// The earlier delivery of the same ordering key this one waits behind, while it does.
function waitingFor(ahead) {
  if (ahead === null) return "nothing";
  return h("a", { href: `#/deliveries/${ahead}` }, h("code", {}, ahead));
}

function attemptItem(attempt) {
  const outcome = attempt.status_code === null ? "no answer" : `HTTP ${attempt.status_code}`;
  return h("li", { class: "attempt", value: String(attempt.attempt) },
    h("h3", {}, `Attempt ${attempt.attempt}: ${outcome}`),
    facts([
      ["Status code", attempt.status_code === null ? "none" : String(attempt.status_code)],
      ["Error", attempt.error ?? "none"],
      ["Duration", `${attempt.duration_ms} ms`],
      ["Time", time(attempt.created_at)],
      ["Response body", textBlock(attempt.response_body ?? "", { class: "response" })],
    ]));
}
