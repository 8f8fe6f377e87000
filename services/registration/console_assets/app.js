// The console's entry: sign-in, the screens by URL fragment, and what a 401 does.

import { api, authMode, credential, signIn, signOut, SignedOut } from "./api.js";
import { h, say, notice } from "./dom.js";
import { stopAll } from "./polling.js";
import { webhooksScreen } from "./webhooks.js";
import { webhookScreen } from "./webhook.js";
import { deliveryScreen } from "./delivery.js";

const main = document.getElementById("main");
const session = document.getElementById("session");
let mode = null;
// Which screen is current: a slow answer for a screen already left must not draw over the next.
let generation = 0;

/** What a screen draws with: `render` does nothing once the user has moved on. */
function view() {
  const mine = ++generation;
  return {
    alive: () => mine === generation,
    render: (...content) => {
      if (mine === generation) main.replaceChildren(...content);
    },
  };
}

const ROUTES = [
  [/^#\/webhooks\/([0-9a-fA-F-]{36})$/, webhookScreen],
  [/^#\/deliveries\/([0-9a-fA-F-]{36})$/, deliveryScreen],
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
  return error instanceof SignedOut ? `Signed out: ${error.message}` : error.message;
}

function sessionBar() {
  const current = credential();
  const who = current.userId ? `User ${current.userId}` : "Signed in with an API key";
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
window.addEventListener("hashchange", route);

async function start() {
  try {
    mode = await authMode();
  } catch (error) {
    return failed(error);
  }
  const current = credential();
  // A credential of the other mode (the deployment changed) is no use.
  if (current && (mode === "api_key") !== Boolean(current.apiKey)) signOut();
  route();
}

start();
