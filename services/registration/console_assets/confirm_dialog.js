// A question before an action that cannot be undone: a modal <dialog> (focus stays inside,
// Escape or Cancel closes it) whose confirming button says what it does.

import { escalate, SignedOut } from "./api.js";
import { h, notice, say } from "./dom.js";

/**
 * `element` goes into the page; `open()` asks. `action` runs on confirmation; its error is
 * shown inside the dialog, beside its buttons.
 */
export function confirmDialog({ id, title, text, confirmLabel, action }) {
  const status = notice();
  const confirm = h("button", { type: "button", class: "danger", onclick: run }, confirmLabel);
  const cancel = h("button", { type: "button", onclick: () => element.close() }, "Cancel");
  const element = h("dialog", { id, "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-text` },
    h("h2", { id: `${id}-title` }, title),
    h("p", { id: `${id}-text` }, text),
    h("div", { class: "buttons" }, confirm, cancel),
    status);

  async function run() {
    confirm.disabled = true;
    try {
      await action();
      element.close();
    } catch (error) {
      if (error instanceof SignedOut) {
        element.close();
        return escalate(error);
      }
      say(status, error.message, true);
    } finally {
      confirm.disabled = false;
    }
  }

  return {
    element,
    open() {
      say(status, "");
      element.showModal();
      cancel.focus();
    },
  };
}
