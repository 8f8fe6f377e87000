// `Events`: the user's events newest first (GET /event), filtered by type, page by page; and
// one event with its deliveries, each a link to its page.

import { api, userQuery } from "./api.js";
import { loadCatalog } from "./catalog.js";
import { facts, h, jsonText, notice, say, statusBadge, textBlock, time } from "./dom.js";

const PAGE_SIZE = 20;
const STATUSES = ["pending", "succeeded", "failed", "not_attempted", "cancelled"];

export async function eventsScreen(view) {
  const cursors = [null];
  let page = 0;
  const problem = notice();
  const body = h("tbody");
  const catalog = await loadCatalog();
  const show = (change) => () => {
    change();
    load().then(() => say(problem, ""), (error) => say(problem, error.message, true));
  };
  const filter = h("select", { id: "event-type-filter", onchange: show(() => { page = 0; cursors.length = 1; }) },
    h("option", { value: "" }, "all"),
    catalog.map((type) => h("option", { value: type.name }, type.archived ? `${type.name} (archived)` : type.name)));
  const previous = h("button", { type: "button", onclick: show(() => { page -= 1; }) }, "Previous page");
  const next = h("button", { type: "button", onclick: show(() => { page += 1; }) }, "Next page");

  async function load() {
    const query = new URLSearchParams(userQuery());
    query.set("limit", String(PAGE_SIZE));
    if (filter.value) query.set("event_type", filter.value);
    if (cursors[page]) query.set("cursor", cursors[page]);
    const envelope = await api("GET", `/event?${query}`);
    cursors[page + 1] = envelope.next_cursor;
    previous.disabled = page === 0;
    next.disabled = !envelope.next_cursor;
    if (envelope.data.length === 0) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: "4" }, filter.value ? `No ${filter.value} events.` : "No events yet.")));
      return;
    }
    body.replaceChildren(...envelope.data.map((event) => h("tr", {},
      h("td", { "data-label": "Event" }, h("a", { href: `#/events/${event.id}`, title: event.id }, h("code", {}, event.id.slice(0, 8)))),
      h("td", { "data-label": "Type" }, event.event_type, event.test ? " (test)" : ""),
      h("td", { "data-label": "Deliveries" }, deliveryCounts(event.deliveries)),
      h("td", { "data-label": "Created" }, time(event.created_at)))));
  }

  await load();
  view.render(
    h("h1", { tabindex: "-1" }, "Events"),
    h("p", { class: "filter" }, h("label", { for: "event-type-filter" }, "Event type"), filter),
    h("table", { class: "cards" },
      h("caption", { class: "visually-hidden" }, "Your events, newest first"),
      h("thead", {}, h("tr", {}, ["Event", "Type", "Deliveries", "Created"].map((c) => h("th", { scope: "col" }, c)))),
      body),
    h("p", { class: "pager" }, previous, next),
    problem,
  );
}

/** `{pending: 1, succeeded: 2, …}` in words, leaving out the zeros. */
function deliveryCounts(counts) {
  const parts = STATUSES.filter((status) => counts?.[status]).map((status) => `${counts[status]} ${status}`);
  return parts.length ? parts.join(", ") : "none";
}

export async function eventScreen(view, eventId) {
  const event = (await api("GET", `/event/${eventId}`)).data;
  const deliveries = event.deliveries.length === 0
    ? h("p", {}, "No deliveries yet: they are made moments after the event comes, one for each webhook subscribed to its type whose filter matches.")
    : h("ul", { class: "deliveries" }, event.deliveries.map((delivery) => h("li", {},
      h("a", { href: `#/deliveries/${delivery.id}`, title: delivery.id }, "Delivery ", h("code", {}, delivery.id.slice(0, 8))),
      " to webhook ",
      h("a", { href: `#/webhooks/${delivery.webhook_id}`, title: delivery.webhook_id }, h("code", {}, delivery.webhook_id.slice(0, 8))),
      ": ",
      statusBadge(delivery.status))));
  view.render(
    h("h1", { tabindex: "-1" }, event.test ? "Test event " : "Event ", h("code", {}, eventId.slice(0, 8))),
    h("p", {}, h("a", { href: "#/events" }, "← Your events")),
    facts([
      ["Id", h("code", {}, event.id)],
      ["Type", event.event_type],
      ["Test", event.test ? "test: true (sent with Send test event)" : null],
      ["Created", time(event.created_at)],
      ["Payload", textBlock(jsonText(event.payload), { class: "payload" })],
    ]),
    h("section", { "aria-labelledby": "event-deliveries-title" }, h("h2", { id: "event-deliveries-title" }, "Deliveries"), deliveries),
  );
}
