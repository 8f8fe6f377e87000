// One webhook: its settings (never the secret), a chart of its deliveries by outcome, its
// deliveries (status filter, paging, live), and what its owner can do to it.

import { api, ApiError, escalate, SignedOut } from "./api.js";
import { typeNamesOf } from "./catalog.js";
import { confirmDialog } from "./confirm_dialog.js";
import { facts, h, jsonText, notice, say, statusBadge, textBlock, time } from "./dom.js";
import { outcomeChart } from "./outcome_chart.js";
import { every } from "./polling.js";
import { testEventControls } from "./test_event.js";
import { successRate } from "./webhooks.js";

const STATUSES = ["pending", "succeeded", "failed", "not_attempted", "cancelled"];
const PAGE_SIZE = 20;
const DELIVERIES_MS = 1000;
const STATS_MS = 5000;
// Settings the events API added (filter, per-webhook delivery settings): shown when present.
const OPTIONAL_SETTINGS = [
  ["filter", "Filter", (value) => textBlock(jsonText(value))],
  ["retry_schedule", "Retry schedule (s)", (value) => value.join(", ")],
  ["timeout_seconds", "Timeout (s)", (value) => String(value)],
  ["signature_scheme", "Signature scheme", (value) => value],
  ["max_concurrency", "Max concurrency", (value) => String(value)],
  ["rate_limit_per_second", "Rate limit", (value) => `${value} a second`, "none"],
  ["auth", "Authentication", authShown, "none"],
  ["tls_client_certificate", "Client certificate", (value) => [value.subject, ", expires ", time(value.expires_at)], "none"],
  ["tls_ca", "Trusted CA", () => "its own CA (PEM), besides the system's", "the system's"],
];

/** A webhook's `auth` as answers show it: never the secret, only that one is stored. */
function authShown(auth) {
  if (auth.type === "basic") return `basic, user ${auth.username}${auth.has_password ? ", password stored" : ""}`;
  const secret = auth.has_secret ? ", client secret stored" : "";
  return `OAuth2 client credentials, client ${auth.client_id} at ${auth.token_url}${secret}`;
}

export async function webhookScreen(view, webhookId) {
  let webhook = (await api("GET", `/webhook/${webhookId}`)).data;
  const typeNames = await typeNamesOf(webhook);
  const status = notice();
  const settings = h("section", { "aria-labelledby": "settings-title" });
  const toggle = h("button", { type: "button", onclick: () => act(toggleDisabled) });

  function drawSettings() {
    const optional = OPTIONAL_SETTINGS.filter(([key]) => key in webhook).map(([key, label, show, unset]) => [
      label,
      webhook[key] === null ? unset ?? "default" : show(webhook[key]),
    ]);
    settings.replaceChildren(
      h("h2", { id: "settings-title" }, "Settings"),
      facts([
        ["Id", h("code", {}, webhook.id)],
        ["URL", h("span", { class: "url" }, webhook.url)],
        [typeNames.length > 1 ? "Event types" : "Event type", typeNames.join(", ")],
        ["State", webhook.disabled ? `disabled (${webhook.disabled_reason ?? "no reason given"})` : "enabled"],
        ["Custom headers", textBlock(jsonText(webhook.custom_headers))],
        ["Custom payload", textBlock(jsonText(webhook.custom_payload))],
        ...optional,
        ["Created", time(webhook.created_at)],
        ["Updated", time(webhook.updated_at)],
      ]),
    );
    toggle.textContent = webhook.disabled ? "Enable" : "Disable";
  }

  async function act(action) {
    try {
      await action();
    } catch (error) {
      if (error instanceof SignedOut) return escalate(error);
      if (!(error instanceof ApiError)) throw error;
      say(status, error.message, true);
    }
  }

  async function toggleDisabled() {
    const disabled = !webhook.disabled;
    webhook = (await api("PATCH", `/webhook/${webhookId}`, { disabled })).data;
    drawSettings();
    say(status, disabled ? "Disabled: deliveries are recorded as not_attempted." : "Enabled.");
  }

  const secret = h("output", { id: "new-secret", class: "secret", for: "rotate" });
  async function rotate() {
    const rotation = (await api("POST", `/webhook/${webhookId}/secret/rotate`)).data;
    secret.replaceChildren(
      h("span", {}, "New secret (shown only now, copy it): "),
      h("code", {}, rotation.secret),
      h("span", {}, " · the old one also signs until "),
      time(rotation.previous_secret_expires_at),
    );
    say(status, "Secret rotated.");
  }

  const since = h("input", { id: "recover-since", type: "datetime-local", step: "1" });
  since.value = localInputValue(new Date(Date.now() - 24 * 3600 * 1000));
  async function recover() {
    const chosen = new Date(since.value);
    if (Number.isNaN(chosen.getTime())) return say(status, "Choose a time to recover from.", true);
    const result = (await api("POST", `/webhook/${webhookId}/recover`, { since: chosen.toISOString() })).data;
    say(status, `Recovering ${result.recovering} failed or not attempted deliveries.`);
  }

  const removal = confirmDialog({
    id: "delete-dialog",
    title: "Delete this webhook?",
    text: "It stops receiving events at once, its waiting deliveries are cancelled, and it cannot be restored.",
    confirmLabel: "Delete webhook",
    action: async () => {
      await api("DELETE", `/webhook/${webhookId}`);
      location.hash = "#/";
    },
  });

  const actions = h(
    "section",
    { "aria-labelledby": "actions-title", class: "actions" },
    h("h2", { id: "actions-title" }, "Actions"),
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: () => { location.hash = `#/webhooks/${webhookId}/edit`; } }, "Edit"),
      toggle,
      h("button", { type: "button", id: "rotate", onclick: () => act(rotate) }, "Rotate secret"),
      h("button", { type: "button", class: "danger", onclick: () => removal.open() }, "Delete")),
    h("div", { class: "buttons" }, testEventControls(webhook, typeNames, status)),
    secret,
    h("div", { class: "recover" },
      h("label", { for: "recover-since" }, "Since"),
      since,
      h("button", { type: "button", onclick: () => act(recover) }, "Recover")),
    status,
  );

  const chart = outcomeChart();
  const rate = h("p", {});
  async function loadStats() {
    const stats = (await api("GET", `/webhook/${webhookId}/stats?hours=24`)).data;
    rate.textContent = `Success rate over the last 24 h: ${successRate(stats)}.`;
    chart.update(stats);
  }

  const deliveries = deliveryList(webhookId);
  await Promise.all([loadStats(), deliveries.load()]);
  drawSettings();
  view.render(
    h("h1", { tabindex: "-1", class: "url" }, webhook.url),
    h("p", {}, h("a", { href: "#/" }, "← Your webhooks")),
    actions,
    settings,
    h("section", { "aria-labelledby": "chart-title" }, h("h2", { id: "chart-title" }, "Deliveries by outcome, last 24 h"), rate, chart.element),
    deliveries.element,
    removal.element,
  );
  chart.draw();
  every(DELIVERIES_MS, deliveries.load);
  every(STATS_MS, loadStats);
}

function deliveryList(webhookId) {
  const cursors = [null];
  let page = 0;
  let shown = "";
  const problem = notice();
  // A page turn or filter change that fails says why beside the list.
  const show = (change) => () => {
    change();
    load().then(() => say(problem, ""), (error) => say(problem, error.message, true));
  };
  const filter = h("select", { id: "status-filter", onchange: show(() => { page = 0; cursors.length = 1; }) },
    h("option", { value: "" }, "all"), ...STATUSES.map((s) => h("option", { value: s }, s)));
  const body = h("tbody");
  const previous = h("button", { type: "button", onclick: show(() => { page -= 1; }) }, "Previous page");
  const next = h("button", { type: "button", onclick: show(() => { page += 1; }) }, "Next page");
  const table = h("table", { class: "cards" },
    h("caption", { class: "visually-hidden" }, "Deliveries, newest first"),
    h("thead", {}, h("tr", {}, ...["Delivery", "Status", "Attempts", "Next retry", "Created"].map((c) => h("th", { scope: "col" }, c)))),
    body);

  async function load() {
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (filter.value) query.set("status", filter.value);
    if (cursors[page]) query.set("cursor", cursors[page]);
    const envelope = await api("GET", `/webhook/${webhookId}/deliveries?${query}`);
    cursors[page + 1] = envelope.next_cursor;
    previous.disabled = page === 0;
    next.disabled = !envelope.next_cursor;
    // Redrawn only when something changed, so focus and selection stay put between polls.
    const text = JSON.stringify(envelope.data);
    if (text === shown) return;
    shown = text;
    if (envelope.data.length === 0) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: "5" },
        filter.value ? `No ${filter.value} deliveries.` : "No deliveries yet: upload a file or press Send test event.")));
      return;
    }
    body.replaceChildren(...envelope.data.map((delivery) => h("tr", {},
      h("td", { "data-label": "Delivery" }, h("a", { href: `#/deliveries/${delivery.id}`, title: delivery.id }, h("code", {}, delivery.id.slice(0, 8)))),
      h("td", { "data-label": "Status" }, statusBadge(delivery.status)),
      h("td", { "data-label": "Attempts" }, String(delivery.attempt_count)),
      h("td", { "data-label": "Next retry" }, time(delivery.next_retry_at)),
      h("td", { "data-label": "Created" }, time(delivery.created_at)))));
  }

  const element = h("section", { "aria-labelledby": "deliveries-title" },
    h("h2", { id: "deliveries-title" }, "Deliveries"),
    h("p", { class: "filter" }, h("label", { for: "status-filter" }, "Status"), filter),
    table,
    h("p", { class: "pager" }, previous, next),
    problem);
  return { element, load };
}

/** `YYYY-MM-DDTHH:MM:SS` in the browser's zone, as a datetime-local input takes it. */
function localInputValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
