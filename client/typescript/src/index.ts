// The thin layer over openapi-fetch and the types openapi-typescript generates from the API
// document (src/schema.d.ts, from client/openapi.json; `npm run generate`): the envelope's
// `data`, typed errors with `retryAfter`, the Idempotency-Key, and paging.
import createClient, { type Client } from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };
/** The document's shapes by name: `Schemas["Webhook"]`, `Schemas["EventRequest"]`, ... */
export type Schemas = components["schemas"];

/**
 * A non-2xx answer: its status, the envelope's `message` (which field, what was wrong) and
 * `data`, and `Retry-After`. `status` tells the kind (the document's `components.responses`
 * says what each means); the two that ask to wait have their own class.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly data: Record<string, unknown>;
  /** Seconds to wait before trying again (429 and 503 carry it), else null. */
  readonly retryAfter: number | null;

  constructor(status: number, message: string, data: Record<string, unknown>, retryAfter: number | null) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.data = data;
    this.retryAfter = retryAfter;
  }
}
/** 429: over the rate limit; wait `retryAfter` seconds. */
export class RateLimited extends ApiError {}
/** 503: a dependency of the service is down; wait `retryAfter` seconds. */
export class Unavailable extends ApiError {}

/** The service sends delay-seconds; an HTTP date or garbage counts as absent. */
export function retryAfterSeconds(value: string | null): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

/** The typed error for an answer; a body that is not the envelope still gives a message. */
export function apiError(response: Response, body: unknown): ApiError {
  const envelope = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  const message =
    typeof envelope.message === "string"
      ? envelope.message
      : String(body ?? "").slice(0, 500) || `HTTP ${response.status}`;
  const data =
    typeof envelope.data === "object" && envelope.data !== null
      ? (envelope.data as Record<string, unknown>)
      : {};
  const Kind = response.status === 429 ? RateLimited : response.status === 503 ? Unavailable : ApiError;
  return new Kind(response.status, message, data, retryAfterSeconds(response.headers.get("Retry-After")));
}

/** What an openapi-fetch call resolves to, for an answer in our envelope. */
interface Answer<Data, Extra = unknown> {
  data?: { data: Data } & Extra;
  error?: unknown;
  response: Response;
}

/** One page of a list, newest first; pass `nextCursor` as `cursor` for the next one. */
export interface Page<Item> {
  items: Item[];
  nextCursor: string | null;
}

/** The `Idempotency-Key` header for POST /event and the upload route: a repeat within 24 h
 * answers the first event or upload again instead of acting twice. */
export function idempotencyKey(key: string): { "Idempotency-Key": string } {
  return { "Idempotency-Key": key };
}

export interface ClientOptions {
  /** `Authorization: Bearer <apiKey>`; leave it out with AUTH_MODE=none. */
  apiKey?: string;
  /** Another fetch (a test double, a proxy agent). */
  fetch?: typeof globalThis.fetch;
}

/**
 * `client.api` is openapi-fetch's client, typed by the document: `client.api.GET(path, ...)`.
 * Hand its calls to `data`, `page` or `items` to get the envelope's `data` or an `ApiError`.
 */
export class WebhooksClient {
  readonly api: Client<paths>;

  constructor(baseUrl: string, options: ClientOptions = {}) {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (options.apiKey !== undefined) headers.Authorization = `Bearer ${options.apiKey}`;
    this.api = createClient<paths>({ baseUrl, headers, fetch: options.fetch });
  }

  /** The envelope's `data` of a 2xx answer; any other answer throws its `ApiError`. */
  async data<Data>(call: Promise<Answer<Data>>): Promise<Data> {
    const { data, error, response } = await call;
    if (!response.ok || data === undefined) throw apiError(response, error);
    return data.data;
  }

  /** One page of a list route (`limit`, `cursor` in its query). */
  async page<Item>(call: Promise<Answer<Item[], { next_cursor: string | null }>>): Promise<Page<Item>> {
    const { data, error, response } = await call;
    if (!response.ok || data === undefined) throw apiError(response, error);
    return { items: data.data, nextCursor: data.next_cursor };
  }

  /** Every item of a list route, following `next_cursor`; `pageAt(cursor)` asks each page. */
  async *items<Item>(
    pageAt: (cursor: string | undefined) => Promise<Answer<Item[], { next_cursor: string | null }>>,
  ): AsyncGenerator<Item> {
    let cursor: string | undefined;
    do {
      const page = await this.page(pageAt(cursor));
      yield* page.items;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
  }
}
