// `Send test event`: one test event to this webhook only (POST /webhook/{webhook_id}/test), of
// a type it subscribes to, and what happened in words with a link to the delivery.

import { api, ApiError, credential, ENDPOINTS_API, escalate, RawJson, SignedOut } from "./api.js";
import { h, say } from "./dom.js";

/** The button (and, for a webhook of several types, the type to send); `status` says what happened. */
export function testEventControls(webhook, typeNames, status) {
  const choice = typeNames.length > 1
    ? h("select", { id: "test-event-type" }, typeNames.map((name) => h("option", { value: name }, name)))
    : null;

  async function send() {
    try {
      if (ENDPOINTS_API) {
        const body = choice ? { event_type: choice.value } : {};
        const sent = (await api("POST", `/webhook/${webhook.id}/test`, body)).data;
        say(status, [
          "Test event accepted: delivery ",
          h("a", { href: `#/deliveries/${sent.delivery_id}` }, h("code", {}, sent.delivery_id.slice(0, 8))),
          " of event ",
          h("a", { href: `#/events/${sent.event_id}` }, h("code", {}, sent.event_id.slice(0, 8))),
          ". It appears in the deliveries below.",
        ]);
      } else {
        const sample = (await api("GET", `/webhook/${webhook.id}/sample_event`)).data;
        const body = { event_type_id: sample.event_type_id, payload: sample.payload };
        const accepted = (await api("POST", "/event", withUser(body, sample.user_id))).data;
        say(status, ["Test event ", h("a", { href: `#/events/${accepted.event_id}` }, accepted.event_id), " accepted."]);
      }
    } catch (error) {
      if (error instanceof SignedOut) return escalate(error);
      say(status, error.message, true);
    }
  }

  const button = h("button", { type: "button", onclick: send }, "Send test event");
  if (!choice) return [button];
  return [h("span", { class: "inline-field" }, h("label", { for: "test-event-type" }, "Type to send"), choice), button];
}

/**
 * The event for the webhook's user. With API keys the key says who (user_id left out). User
 * ids go up to 2^63 - 1, past what a JavaScript number holds exactly, so the signed-in user's
 * id is sent as the digits typed in when it is the webhook's user.
 */
function withUser(body, sampleUserId) {
  const current = credential();
  if (!current.userId) return body;
  if (Number(current.userId) === sampleUserId) return new RawJson(body, current.userId);
  if (Number.isSafeInteger(sampleUserId)) return { ...body, user_id: sampleUserId };
  throw new ApiError(0, "This webhook is another user's: sign in as its user to send a test event.");
}
