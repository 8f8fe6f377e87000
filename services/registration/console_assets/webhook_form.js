// The form that registers a webhook (`Add webhook`) or changes every setting of one (`Edit`):
// the API's errors appear beside the field they name, and a new secret is shown once.

import { api, asSignedInUser, escalate, SignedOut } from "./api.js";
import { loadCatalog, typeIdsOf } from "./catalog.js";
import { h, notice, say, time } from "./dom.js";
import { ENDPOINT_FIELD_OF, endpointAuthFields, withoutKind } from "./endpoint_auth_fields.js";
import { FieldProblem, formFields, wholeNumber } from "./form_fields.js";

const SCHEMES = [
  ["hmac", "hmac (a shared secret)"],
  ["ed25519", "ed25519 (a public key)"],
];
// A body field → the form field that shows its errors. The API's messages start with the
// field they concern (`url: …`, `retry_schedule.2: …`, `event_type_ids[1]: …`).
const FIELD_OF = {
  url: "url",
  event_type_id: "event-types",
  event_type_ids: "event-types",
  filter: "filter",
  custom_headers: "custom-headers",
  custom_payload: "custom-payload",
  signature_scheme: "signature-scheme",
  retry_schedule: "retry-schedule",
  timeout_seconds: "timeout-seconds",
  max_concurrency: "max-concurrency",
  rate_limit_per_second: "rate-limit-per-second",
  ...ENDPOINT_FIELD_OF,
};

/** `#/webhooks/new` (no id) or `#/webhooks/<id>/edit`. */
export async function webhookFormScreen(view, webhookId) {
  const [catalog, webhook] = await Promise.all([
    loadCatalog(),
    webhookId ? api("GET", `/webhook/${webhookId}`).then((e) => e.data) : null,
  ]);
  const form = webhookForm(catalog, webhook);
  const back = webhook ? `#/webhooks/${webhook.id}` : "#/";

  async function save(event) {
    event.preventDefault();
    form.clearProblems();
    try {
      const settings = form.read();
      if (webhook) await saveChanges(settings);
      else await register(settings);
    } catch (error) {
      if (error instanceof FieldProblem) return form.showProblem(error.field, error.message);
      if (error instanceof SignedOut) return escalate(error);
      form.showProblem(fieldOf(error.message), error.message);
    }
  }

  async function register(settings) {
    const { eventTypeIds, ...rest } = settings;
    const body = { ...rest, custom_headers: rest.custom_headers ?? {}, custom_payload: rest.custom_payload ?? {} };
    body.event_type_ids = eventTypeIds;
    const created = (await api("POST", "/webhook/register", asSignedInUser(body))).data;
    showKey(view, "Webhook added", created, null);
  }

  async function saveChanges(settings) {
    const { eventTypeIds, signature_scheme: scheme, ...body } = settings;
    // Sent only when changed: a new scheme rotates the key, a new list replaces the types.
    if (scheme !== webhook.signature_scheme) body.signature_scheme = scheme;
    if (eventTypeIds.join() !== typeIdsOf(webhook).join()) body.event_type_ids = eventTypeIds;
    const updated = (await api("PATCH", `/webhook/${webhook.id}`, body)).data;
    if (updated.secret) showKey(view, "Webhook saved", updated, updated.previous_secret_expires_at);
    else location.hash = back;
  }

  view.render(
    h("h1", { tabindex: "-1", class: webhook ? "url" : null }, webhook ? `Edit ${webhook.url}` : "Add webhook"),
    h("p", {}, h("a", { href: back }, webhook ? "← Its page" : "← Your webhooks")),
    h("form", { class: "webhook-form", novalidate: true, onsubmit: save }, form.fields, form.footer),
  );
}

function webhookForm(catalog, webhook) {
  const fields = formFields();
  const { problems, field, text } = fields;
  const entries = [];
  const json = (id, value) => fields.textArea(id, isEmpty(value) ? "" : JSON.stringify(value, null, 2));
  const number = (value) => (value === null || value === undefined ? "" : String(value));

  const url = text("url", webhook?.url, { type: "url", inputmode: "url", required: true });
  const types = eventTypeChoices(catalog, webhook);
  problems.set("event-types", { error: types.error, control: types.first });
  const filter = json("filter", webhook?.filter);
  const headers = json("custom-headers", webhook?.custom_headers);
  const payload = json("custom-payload", webhook?.custom_payload);
  const scheme = h("select", { id: "signature-scheme", name: "signature-scheme" },
    SCHEMES.map(([value, label]) => h("option", { value, selected: (webhook?.signature_scheme ?? "hmac") === value }, label)));
  const retries = text("retry-schedule", webhook?.retry_schedule?.length === 0 ? "none" : webhook?.retry_schedule?.join(", "));
  const timeout = text("timeout-seconds", number(webhook?.timeout_seconds), { inputmode: "numeric" });
  const concurrency = text("max-concurrency", number(webhook?.max_concurrency), { inputmode: "numeric" });
  const rateLimit = text("rate-limit-per-second", number(webhook?.rate_limit_per_second), { inputmode: "numeric" });
  const endpoint = endpointAuthFields(webhook, fields);
  entries.push(
    field("url", "URL", url, "Where deliveries are POSTed: an absolute http or https URL."),
    types.element,
    field("filter", "Filter (JSON, optional)", filter,
      'Matched against each event\'s data, e.g. {"amount": {"$gt": 100}}. Empty: every event.'),
    field("custom-headers", "Custom headers (JSON object, optional)", headers,
      'Sent with every delivery, e.g. {"X-Team": "billing"}. To authenticate, see Endpoint authentication below.'),
    field("custom-payload", "Custom payload (JSON object, optional)", payload,
      "Merged into every delivery's body."),
    field("signature-scheme", "Signature scheme", scheme,
      webhook ? "Changing it makes a new key, shown once." : "How deliveries are signed (Standard Webhooks); ed25519: you verify with our public key."),
    field("retry-schedule", "Retry schedule (seconds, optional)", retries,
      "Comma-separated delays before each retry, e.g. 10, 60, 600. Empty: the default; none: no retries."),
    field("timeout-seconds", "Timeout seconds (optional)", timeout, "1 to 60. Empty: the default."),
    field("max-concurrency", "Max concurrency (optional)", concurrency,
      "Deliveries in flight to it at once, 1 to 1000. Empty: the default."),
    field("rate-limit-per-second", "Rate limit per second (optional)", rateLimit,
      "Requests started to it each second, across all dispatchers, 1 to 10000; the rest wait. Empty: no limit."),
    ...endpoint.sections,
  );
  const status = notice();
  status.id = "save-status";

  return {
    fields: entries,
    footer: h("div", { class: "buttons" }, h("button", { type: "submit", class: "primary" }, "Save"), status),
    read: () => ({
      url: url.value.trim(),
      eventTypeIds: types.picked(),
      filter: jsonObject(filter.value, "filter"),
      custom_headers: jsonObject(headers.value, "custom_headers"),
      custom_payload: jsonObject(payload.value, "custom_payload"),
      signature_scheme: scheme.value,
      retry_schedule: retrySchedule(retries.value),
      timeout_seconds: wholeNumber(timeout.value, "timeout_seconds"),
      max_concurrency: wholeNumber(concurrency.value, "max_concurrency"),
      rate_limit_per_second: wholeNumber(rateLimit.value, "rate_limit_per_second"),
      ...endpoint.read(),
    }),
    clearProblems() {
      for (const { error, control } of problems.values()) {
        error.textContent = "";
        control?.removeAttribute("aria-invalid");
      }
      say(status, "");
    },
    showProblem(bodyField, message) {
      const place = problems.get(FIELD_OF[bodyField]);
      if (!place) return say(status, `Not saved: ${message}`, true);
      place.error.textContent = message;
      // A field in a closed section (Endpoint authentication, Mutual TLS) is opened to be seen.
      place.control?.closest("details")?.setAttribute("open", "");
      place.control?.setAttribute("aria-invalid", "true");
      place.control?.focus();
      say(status, "Not saved: see the message beside the field.", true);
    },
  };
}

/** The catalog as checkboxes: archived types only where the webhook already has them. */
function eventTypeChoices(catalog, webhook) {
  const current = webhook ? typeIdsOf(webhook) : [];
  const byId = new Map(catalog.map((type) => [type.id, type]));
  const offered = [
    ...current.map((id) => byId.get(id) ?? { id, name: id, description: "", archived: false }),
    ...catalog.filter((type) => !type.archived && !current.includes(type.id)),
  ];
  const boxes = offered.map((type) => h("input", {
    type: "checkbox",
    id: `type-${type.id}`,
    name: "event-types",
    value: type.id,
    checked: current.includes(type.id),
    "aria-describedby": `type-${type.id}-description`,
  }));
  const error = h("p", { id: "event-types-error", class: "field-error" });
  const element = h("fieldset", { id: "event-types", class: "field choices", "aria-describedby": "event-types-error" },
    h("legend", {}, "Event types"),
    offered.map((type, index) => h("div", { class: "choice" },
      boxes[index],
      h("label", { for: `type-${type.id}` }, type.name, type.archived ? " (archived)" : ""),
      h("p", { id: `type-${type.id}-description`, class: "hint" }, type.description || "No description."))),
    error);
  return {
    element,
    error,
    first: boxes[0] ?? null,
    picked: () => {
      const ids = boxes.filter((box) => box.checked).map((box) => box.value);
      if (ids.length === 0) throw new FieldProblem("event_type_ids", "event_type_ids: pick at least one event type.");
      return ids;
    },
  };
}

/** The new webhook's secret (or, with ed25519, public key), shown this once. */
function showKey(view, title, webhook, previousExpiresAt) {
  const copied = notice();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(webhook.secret);
      say(copied, "Copied.");
    } catch {
      say(copied, "The browser did not allow copying: select the text and copy it.", true);
    }
  };
  const publicKey = webhook.signature_scheme === "ed25519";
  view.render(
    h("h1", { tabindex: "-1" }, title),
    h("p", { class: "url" }, webhook.url),
    h("section", { "aria-labelledby": "key-title", class: "key" },
      h("h2", { id: "key-title" }, publicKey ? "Its public key" : "Its signing secret"),
      h("p", { class: "notice" }, "Copy it now; it will not be shown again."),
      h("p", {}, h("code", { id: "new-secret", class: "secret" }, webhook.secret)),
      previousExpiresAt ? h("p", {}, "The old key also signs until ", time(previousExpiresAt), ".") : null,
      h("div", { class: "buttons" }, h("button", { type: "button", onclick: copy }, "Copy"), copied)),
    h("p", {}, h("a", { href: `#/webhooks/${webhook.id}` }, "Go to the webhook's page")),
  );
  document.querySelector("main h1")?.focus();
}

/** The body field an API message names (`retry_schedule.2: …` → retry_schedule,
 * `auth.basic.password: …` → auth.password), as FIELD_OF knows it; else null. */
function fieldOf(message) {
  const match = /^[a-z_]+(?:\.[a-z0-9_]+)*/.exec(message);
  if (!match) return null;
  const path = withoutKind(match[0].split("."));
  for (let length = path.length; length > 0; length -= 1) {
    const name = path.slice(0, length).join(".");
    if (name in FIELD_OF) return name;
  }
  return null;
}

function isEmpty(value) {
  return value === null || value === undefined || (typeof value === "object" && Object.keys(value).length === 0);
}

/** A JSON object typed into a textarea; empty is null ("none"). */
function jsonObject(text, name) {
  if (!text.trim()) return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new FieldProblem(name, `${name} is not valid JSON: ${error.message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FieldProblem(name, `${name} must be a JSON object ({…})`);
  }
  return value;
}

function retrySchedule(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  if (trimmed.toLowerCase() === "none") return [];
  const delays = trimmed.split(",").map((part) => part.trim());
  const wrong = delays.find((part) => !/^[0-9]{1,9}$/.test(part));
  if (wrong !== undefined) {
    throw new FieldProblem("retry_schedule", `retry_schedule: "${wrong}" is not a whole number of seconds`);
  }
  return delays.map(Number);
}

