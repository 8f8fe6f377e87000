// Building the page from data: every value from outside becomes a text node, never HTML.

/** An element with attributes and children; strings and numbers become text nodes. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) {
      element.addEventListener(name.slice(2), value);
    } else if (name === "href" && !String(value).startsWith("#/")) {
      // Links go to the console's own screens only; a URL from outside is shown as text.
      throw new Error(`refusing link to ${value}`);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined).map(node));
  return element;
}

function node(child) {
  return child instanceof Node ? child : document.createTextNode(String(child));
}

/** A time from the API (UTC, `YYYY-MM-DD HH:MM:SS`) in the browser's zone, UTC on hover. */
export function time(apiTime) {
  if (!apiTime) return h("span", {}, "—");
  const date = parseApiTime(apiTime);
  return h("time", { datetime: date.toISOString(), title: `${apiTime} UTC` }, date.toLocaleString());
}

export function parseApiTime(apiTime) {
  return new Date(`${apiTime.replace(" ", "T")}Z`);
}

/** JSON shown as indented text (or the text itself when it is not JSON). */
export function jsonText(value) {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

/** Text kept as it is (JSON, a body). In the tab order: a long one scrolls, by keyboard too. */
export function textBlock(text, attributes = {}) {
  return h("pre", { tabindex: "0", ...attributes }, text);
}

/** A term/definition list from [label, content] pairs (content null: left out). */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, content]) => content !== null && content !== undefined)
      .flatMap(([label, content]) => [h("dt", {}, label), h("dd", {}, content)]),
  );
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status);
}

/** A polite live region: what a button did, or why it failed. */
export function notice() {
  return h("p", { class: "notice", role: "status", "aria-live": "polite" });
}

/** `content`: text, or an array of text and elements (a link to what was made, say). */
export function say(region, content, isError = false) {
  if (Array.isArray(content)) region.replaceChildren(...content.map(node));
  else region.textContent = content;
  region.classList.toggle("error", isError);
}
