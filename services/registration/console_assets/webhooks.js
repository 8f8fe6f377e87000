// The signed-in user's webhooks: url (a link to its page), event types, state, 24 h success
// rate; and `Add webhook`.

import { api, userQuery } from "./api.js";
import { typeNamesOf } from "./catalog.js";
import { h, notice, say } from "./dom.js";
import { every } from "./polling.js";

const PAGE_SIZE = 20;
const REFRESH_MS = 10000;

export function successRate(stats) {
  if (stats.success_rate === null) return "no attempts";
  return `${(Math.round(stats.success_rate * 1000) / 10).toString()} %`;
}

export async function webhooksScreen(view) {
  const cursors = [null];
  let page = 0;
  const body = h("tbody");
  const status = notice();
  const previous = h("button", { type: "button", onclick: () => turn(-1) }, "Previous page");
  const next = h("button", { type: "button", onclick: () => turn(1) }, "Next page");
  const table = h(
    "table",
    { class: "cards" },
    h("caption", { class: "visually-hidden" }, "Your webhooks"),
    h(
      "thead",
      {},
      h("tr", {}, h("th", { scope: "col" }, "URL"), h("th", { scope: "col" }, "Event types"),
        h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, "Success rate (24 h)")),
    ),
    body,
  );

  async function load() {
    const cursor = cursors[page] ? `&cursor=${encodeURIComponent(cursors[page])}` : "";
    const envelope = await api("GET", `/webhook?${userQuery()}&limit=${PAGE_SIZE}${cursor}`);
    cursors[page + 1] = envelope.next_cursor;
    previous.disabled = page === 0;
    next.disabled = !envelope.next_cursor;
    if (envelope.data.length === 0) {
      body.replaceChildren(h("tr", {}, h("td", { colspan: "4" },
        "No webhooks yet: press Add webhook (or use POST /webhook/register, described at /docs).")));
      return;
    }
    const rows = await Promise.all(envelope.data.map(row));
    body.replaceChildren(...rows);
  }

  async function row(webhook) {
    const [typeNames, stats] = await Promise.all([
      typeNamesOf(webhook),
      api("GET", `/webhook/${webhook.id}/stats?hours=24`).then((e) => e.data),
    ]);
    return h(
      "tr",
      {},
      h("td", { "data-label": "URL" }, h("a", { href: `#/webhooks/${webhook.id}`, class: "url" }, webhook.url)),
      h("td", { "data-label": "Event types" }, typeNames.join(", ")),
      h("td", { "data-label": "State" }, webhook.disabled ? "disabled" : "enabled"),
      h("td", { "data-label": "Success rate (24 h)" }, successRate(stats)),
    );
  }

  async function turn(step) {
    page += step;
    try {
      await load();
      say(status, `Page ${page + 1}`);
    } catch (error) {
      say(status, error.message, true);
    }
  }

  await load();
  const add = h("button", { type: "button", onclick: () => { location.hash = "#/webhooks/new"; } }, "Add webhook");
  view.render(h("h1", { tabindex: "-1" }, "Your webhooks"), h("div", { class: "buttons" }, add), table, h("p", { class: "pager" }, previous, next), status);
  every(REFRESH_MS, load);
}
