// `Event types`: every type a webhook can subscribe to, with its description, its schema and
// an example payload, all shown as text.

import { loadCatalog } from "./catalog.js";
import { h, jsonText, textBlock } from "./dom.js";
import { samplePayload } from "./schema_sample.js";

export async function eventTypesScreen(view) {
  const offered = (await loadCatalog()).filter((type) => !type.archived);
  view.render(
    h("h1", { tabindex: "-1" }, "Event types"),
    h("p", {}, "The types a webhook can subscribe to. The example payload is sketched from the schema here in the browser; ",
      "Send test event on a webhook's page sends one the API checked."),
    offered.length === 0 ? h("p", {}, "No event types yet.") : null,
    offered.map((type, index) => h("section", { class: "event-type", "aria-labelledby": `type-${index}-name` },
      h("h2", { id: `type-${index}-name` }, type.name),
      h("p", {}, type.description || "No description."),
      h("h3", {}, "Schema"),
      type.schema ? textBlock(jsonText(type.schema), { class: "schema" }) : h("p", {}, "None: any JSON object is accepted."),
      h("h3", {}, "Example payload"),
      textBlock(jsonText(samplePayload(type.schema)), { class: "example" }))),
  );
}
