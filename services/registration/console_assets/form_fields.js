// The parts of the webhook form: labelled fields whose errors appear beside them, and the
// problem a field's own check finds before the API is asked.

import { h } from "./dom.js";

/** What is wrong with one field, found before asking the API. `field`: the body's field. */
export class FieldProblem extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

/** Field builders that remember, for each field id, where its error is shown. */
export function formFields() {
  const problems = new Map();
  const field = (id, label, control, hint) => {
    const error = h("p", { id: `${id}-error`, class: "field-error" });
    const hintId = hint ? `${id}-hint` : null;
    control.setAttribute("aria-describedby", [hintId, `${id}-error`].filter(Boolean).join(" "));
    problems.set(id, { error, control });
    return h("div", { class: "field" },
      h("label", { for: id }, label),
      hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
      control,
      error);
  };
  const text = (id, value, attributes = {}) =>
    h("input", { id, name: id, type: "text", autocomplete: "off", spellcheck: "false", value: value ?? "", ...attributes });
  const textArea = (id, value, rows = "4") =>
    h("textarea", { id, name: id, rows, spellcheck: "false" }, value ?? "");
  return { problems, field, text, textArea };
}

/** A whole number typed into a field; empty is null ("the default"). */
export function wholeNumber(text, name) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  if (!/^[0-9]{1,9}$/.test(trimmed)) throw new FieldProblem(name, `${name} must be a whole number`);
  return Number(trimmed);
}
