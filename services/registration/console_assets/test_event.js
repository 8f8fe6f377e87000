// `Send test event`: one test event to this webhook only (POST /webhook/{webhook_id}/test), of
// a type it subscribes to, and what happened in words with a link to the delivery.

import { api, escalate, SignedOut } from "./api.js";
import { h, say } from "./dom.js";

/** The button (and, for a webhook of several types, the type to send); `status` says what happened. */
export function testEventControls(webhook, typeNames, status) {
  const choice = typeNames.length > 1
    ? h("select", { id: "test-event-type" }, typeNames.map((name) => h("option", { value: name }, name)))
    : null;

  async function send() {
    try {
      const body = choice ? { event_type: choice.value } : {};
      const sent = (await api("POST", `/webhook/${webhook.id}/test`, body)).data;
      say(status, [
        "Test event accepted: delivery ",
        h("a", { href: `#/deliveries/${sent.delivery_id}` }, h("code", {}, sent.delivery_id.slice(0, 8))),
        " of event ",
        h("a", { href: `#/events/${sent.event_id}` }, h("code", {}, sent.event_id.slice(0, 8))),
        ". It appears in the deliveries below.",
      ]);
    } catch (error) {
      if (error instanceof SignedOut) return escalate(error);
      say(status, error.message, true);
    }
  }

  const button = h("button", { type: "button", onclick: send }, "Send test event");
  if (!choice) return [button];
  return [h("span", { class: "inline-field" }, h("label", { for: "test-event-type" }, "Type to send"), choice), button];
}
