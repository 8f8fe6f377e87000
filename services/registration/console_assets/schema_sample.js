// An example payload for an event type's JSON Schema, made in the browser: a sketch of the
// shape (examples, defaults, consts and enums first, then one value of each declared type),
// not checked against the schema. `POST /webhook/{webhook_id}/test` makes a checked one.

const NO_SCHEMA = { test: true };
// Nested objects beyond this are left out: a sample stays small, a recursive $ref ends.
const MAX_DEPTH = 4;

export function samplePayload(schema) {
  if (!schema || typeof schema !== "object" || Object.keys(schema).length === 0) return NO_SCHEMA;
  const value = sample(schema, schema, 0);
  return value && typeof value === "object" && !Array.isArray(value) ? value : NO_SCHEMA;
}

function sample(schema, root, depth) {
  // A chain of references ($ref to a $ref…) counts too, so a loop of them ends.
  if (!schema || typeof schema !== "object" || depth > 2 * MAX_DEPTH) return null;
  if (typeof schema.$ref === "string") return sample(resolve(root, schema.$ref), root, depth + 1);
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if ("default" in schema) return schema.default;
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  for (const keyword of ["allOf", "anyOf", "oneOf"]) {
    if (Array.isArray(schema[keyword]) && schema[keyword].length > 0) {
      return sample({ ...schema[keyword][0], ...withoutCombinators(schema) }, root, depth);
    }
  }
  switch (kind(schema)) {
    case "object": {
      if (depth >= MAX_DEPTH) return {};
      const properties = schema.properties ?? {};
      return Object.fromEntries(Object.entries(properties).map(([name, part]) => [name, sample(part, root, depth + 1)]));
    }
    case "array":
      return depth >= MAX_DEPTH || !schema.items ? [] : [sample(schema.items, root, depth + 1)];
    case "string":
      return stringSample(schema);
    case "integer":
      return numberSample(schema, true);
    case "number":
      return numberSample(schema, false);
    case "boolean":
      return true;
    default:
      return null;
  }
}

function kind(schema) {
  const declared = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") ?? schema.type[0] : schema.type;
  if (declared) return declared;
  if (schema.properties || schema.required) return "object";
  if (schema.items) return "array";
  return null;
}

function numberSample(schema, integer) {
  let value = 1;
  if (typeof schema.minimum === "number") value = schema.minimum;
  else if (typeof schema.exclusiveMinimum === "number") value = schema.exclusiveMinimum + 1;
  if (typeof schema.maximum === "number" && value > schema.maximum) value = schema.maximum;
  return integer ? Math.ceil(value) : value;
}

function stringSample(schema) {
  const byFormat = {
    "date-time": "2026-01-01T00:00:00Z",
    date: "2026-01-01",
    email: "someone@example.com",
    uri: "https://example.com/",
    uuid: "00000000-0000-4000-8000-000000000000",
  };
  const text = byFormat[schema.format] ?? "string";
  return schema.minLength > text.length ? text.padEnd(schema.minLength, "x") : text;
}

function withoutCombinators(schema) {
  return Object.fromEntries(Object.entries(schema).filter(([key]) => !["allOf", "anyOf", "oneOf"].includes(key)));
}

/** A local `#/...` reference (`#/$defs/address`); anything else has no sample. */
function resolve(root, ref) {
  if (!ref.startsWith("#")) return null;
  return ref.slice(1).split("/").filter(Boolean)
    .map((part) => decodeURIComponent(part.replaceAll("~1", "/").replaceAll("~0", "~")))
    .reduce((node, part) => (node && typeof node === "object" ? node[part] : null), root);
}
