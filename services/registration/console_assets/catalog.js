// The event type catalog (GET /event_type), kept for the page's life and read again when a
// screen needs it whole or meets an id it does not know.

import { api } from "./api.js";

let types = null;
// One read at a time: a list of webhooks asks for many names at once.
let reading = null;

/** Every event type, archived ones included, read from the API now. */
export async function loadCatalog() {
  const envelope = await api("GET", "/event_type");
  types = new Map(envelope.data.map((type) => [type.id, type]));
  return envelope.data;
}

async function known(id) {
  if (types === null || !types.has(id)) {
    reading ??= loadCatalog().finally(() => { reading = null; });
    await reading;
  }
  return types.get(id);
}

/** A type's name by id (the id itself if the catalog has no such type). */
export async function eventTypeName(id) {
  return (await known(id))?.name ?? id;
}

/** A webhook's type ids: `event_type_ids` where the API gives them, else its one type. */
export function typeIdsOf(webhook) {
  return webhook.event_type_ids ?? [webhook.event_type_id];
}

/** A webhook's type names, in the order it subscribed to them. */
export async function typeNamesOf(webhook) {
  return Promise.all(typeIdsOf(webhook).map(eventTypeName));
}
