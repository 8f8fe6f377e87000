// The console's entry: sign-in (a key, a user id or a portal link), the screens by URL
// fragment, and what a 401 does.

import { api, authMode, credential, signIn, signOut, SignedOut } from "./api.js";
import { h, say, notice } from "./dom.js";
import { stopAll } from "./polling.js";
import { webhooksScreen } from "./webhooks.js";
import { webhookScreen } from "./webhook.js";
import { webhookFormScreen } from "./webhook_form.js";
import { deliveryScreen } from "./delivery.js";
import { eventTypesScreen } from "./event_types.js";
import { eventScreen, eventsScreen } from "./events.js";

const main = document.getElementById("main");
const session = document.getElementById("session");
const screens = document.getElementById("screens");
// A portal link (`/console#session=<token>`): the token leaves the address bar (and so the
// history) before anything else runs; it becomes the credential once the mode is known.
const portalToken = takePortalToken();

/** The token of a portal link just opened, taken out of the address bar; else null. */
function takePortalToken() {
  const match = location.hash.match(/^#session=([^&]+)$/);
  if (!match) return null;
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  return decodeURIComponent(match[1]);
}
let mode = null;
// Which screen is current: a slow answer for a screen already left must not draw over the next.
let generation = 0;

/** What a screen draws with: `render` does nothing once the user has moved on. */
function view() {
  const mine = ++generation;
  return {
    alive: () => mine === generation,
    // As `h` takes children: arrays flattened, null and undefined left out.
    render: (...content) => {
      if (mine === generation) main.replaceChildren(...content.flat(Infinity).filter((c) => c !== null && c !== undefined));
    },
  };
}

const ID = "([0-9a-fA-F-]{36})";
const ROUTES = [
  [/^#\/webhooks\/new$/, webhookFormScreen],
  [new RegExp(`^#/webhooks/${ID}/edit$`), webhookFormScreen],
  [new RegExp(`^#/webhooks/${ID}$`), webhookScreen],
  [new RegExp(`^#/deliveries/${ID}$`), deliveryScreen],
  [/^#\/event-types$/, eventTypesScreen],
  [/^#\/events$/, eventsScreen],
  [new RegExp(`^#/events/${ID}$`), eventScreen],
  [/^(#\/?)?$/, webhooksScreen],
];

function show(...content) {
  stopAll();
  generation += 1;
  main.replaceChildren(...content);
}

// Why the console last signed out by itself: kept for the tab, so a reload still says it.
const SIGNED_OUT_REASON = "webhooks.console.signed_out_reason";

function signInScreen(reason) {
  if (reason) sessionStorage.setItem(SIGNED_OUT_REASON, reason);
  else reason = sessionStorage.getItem(SIGNED_OUT_REASON);
  const apiKeys = mode === "api_key";
  const label = apiKeys ? "API key" : "User id";
  const field = h("input", {
    id: "credential",
    name: "credential",
    type: apiKeys ? "password" : "text",
    inputmode: apiKeys ? null : "numeric",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const problem = notice();
  if (reason) say(problem, reason, true);
  const form = h(
    "form",
    { class: "sign-in", novalidate: true, onsubmit: (event) => submitSignIn(event, field, problem) },
    h("h1", { tabindex: "-1" }, "Sign in"),
    h(
      "p",
      {},
      apiKeys
        ? "Paste an API key (make api-key USER_ID=…). It is kept in this tab only and sent as the Authorization header."
        : "This deployment runs with AUTH_MODE=none: give the user whose webhooks you want to see.",
    ),
    h("label", { for: "credential" }, label),
    field,
    h("button", { type: "submit" }, "Sign in"),
    problem,
  );
  session.replaceChildren();
  screens.replaceChildren();
  show(form);
  field.focus();
}

async function submitSignIn(event, field, problem) {
  event.preventDefault();
  const value = field.value.trim();
  if (mode === "api_key") {
    if (!value) return say(problem, "Enter an API key.", true);
    signIn({ apiKey: value });
    try {
      // The key's own webhooks: a 401 here says the key is unknown or revoked.
      await api("GET", "/webhook?limit=1");
    } catch (error) {
      return signInScreen(reasonOf(error));
    }
  } else {
    if (!/^[1-9][0-9]{0,18}$/.test(value)) return say(problem, "User id must be a positive whole number.", true);
    signIn({ userId: value });
  }
  sessionStorage.removeItem(SIGNED_OUT_REASON);
  if (location.hash && location.hash !== "#/") route();
  else location.hash = "#/";
}

function reasonOf(error) {
  if (!(error instanceof SignedOut)) return error.message;
  if (error.portal) return `Your portal link no longer signs you in (${error.message}). Ask for a new link.`;
  return `Signed out: ${error.message}`;
}

function sessionBar() {
  const current = credential();
  let who = "Signed in with an API key";
  if (current.userId) who = `User ${current.userId}`;
  else if (current.portal) who = "Signed in with a portal link";
  // The screen each link leads to, marked as the current page while one of its own is shown.
  const section = location.hash.match(/^#\/(event-types|events)/)?.[0] ?? "#/";
  screens.replaceChildren(...[["#/", "Webhooks"], ["#/event-types", "Event types"], ["#/events", "Events"]]
    .map(([href, name]) => h("a", { href, "aria-current": href === section ? "page" : null }, name)));
  session.replaceChildren(
    h("span", { class: "who" }, who),
    h("button", { type: "button", class: "link", onclick: () => { signOut(); sessionStorage.removeItem(SIGNED_OUT_REASON); signInScreen(); } }, "Sign out"),
  );
}

async function route() {
  if (!credential()) return signInScreen();
  sessionBar();
  for (const [pattern, screen] of ROUTES) {
    const match = location.hash.match(pattern);
    if (match) {
      show(h("p", {}, "Loading…"));
      const screenView = view();
      try {
        await screen(screenView, ...match.slice(1));
      } catch (error) {
        if (screenView.alive()) failed(error);
      }
      if (screenView.alive()) main.querySelector("h1")?.focus();
      return;
    }
  }
  show(h("h1", { tabindex: "-1" }, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to your webhooks")));
}

function failed(error) {
  if (error instanceof SignedOut) return signInScreen(reasonOf(error));
  show(
    h("h1", { tabindex: "-1" }, "Something went wrong"),
    h("p", { class: "notice error", role: "alert" }, error.message),
    h("p", {}, h("a", { href: "#/" }, "Back to your webhooks")),
  );
}

// A live screen's poll that failed: a 401 signs out; anything else is shown where it happened.
window.addEventListener("console-error", (event) => {
  if (event.detail instanceof SignedOut) signInScreen(reasonOf(event.detail));
});
// A portal link opened in a tab that already shows the console changes only the fragment.
window.addEventListener("hashchange", () => {
  const token = takePortalToken();
  if (token) usePortalToken(token);
  else route();
});

/** Sign in as the link's user, whoever was signed in before; its 401s say it is a link's. */
function usePortalToken(token) {
  if (mode !== "api_key") return signInScreen("Portal links work only with AUTH_MODE=api_key: sign in below.");
  signIn({ apiKey: token, portal: true });
  sessionStorage.removeItem(SIGNED_OUT_REASON);
  route();
}

async function start() {
  try {
    mode = await authMode();
  } catch (error) {
    return failed(error);
  }
  if (portalToken) return usePortalToken(portalToken);
  const current = credential();
  // A credential of the other mode (the deployment changed) is no use.
  if (current && (mode === "api_key") !== Boolean(current.apiKey)) signOut();
  route();
}

start();
