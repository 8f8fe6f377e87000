// Against the real stack (tests/test_typescript_sdk.py starts it and sets WEBHOOKS_URL and
// WEBHOOKS_RECEIVER_URL): register, publish, deliveries page by page, redeliver, and the
// error statuses of AUTH_MODE=none as typed errors.
import assert from "node:assert/strict";
import { randomInt, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";

import { ApiError, type Schemas, WebhooksClient, idempotencyKey } from "../src/index.js";

const BASE_URL = process.env.WEBHOOKS_URL ?? "http://127.0.0.1:8081";
const RECEIVER_URL = process.env.WEBHOOKS_RECEIVER_URL ?? "http://127.0.0.1:9/";
const INVOICE_SCHEMA = {
  type: "object",
  required: ["invoice_id", "amount"],
  properties: { invoice_id: { type: "string" }, amount: { type: "integer", minimum: 0 } },
};
const client = new WebhooksClient(BASE_URL);

function newUserId(): number {
  return randomInt(1_000_000, 2 ** 47);
}

async function newEventType(): Promise<Schemas["EventType"]> {
  const name = `invoice.paid.${randomUUID().slice(0, 12)}`;
  return client.data(client.api.POST("/event_type", { body: { name, schema: INVOICE_SCHEMA } }));
}

async function eventually<T>(check: () => Promise<T | undefined>): Promise<T> {
  for (let tries = 0; tries < 200; tries += 1) {
    const found = await check();
    if (found !== undefined) return found;
    await sleep(100);
  }
  assert.fail("condition not met in time");
}

test("register, publish, list deliveries page by page, redeliver", async () => {
  const userId = newUserId();
  const eventType = await newEventType();
  const webhook = await client.data(
    client.api.POST("/webhook/register", {
      body: { user_id: userId, url: RECEIVER_URL, event_type_id: eventType.id },
    }),
  );
  assert.match(webhook.secret, /^whsec_/);

  const publish = (invoiceId: string, key?: string) =>
    client.data(
      client.api.POST("/event", {
        body: {
          user_id: userId,
          event_type: eventType.name,
          payload: { invoice_id: invoiceId, amount: 10 },
        },
        params: { header: key === undefined ? {} : idempotencyKey(key) },
      }),
    );
  const first = await publish("in_1", "in_1-paid");
  const replayed = await publish("in_1", "in_1-paid");
  assert.equal(replayed.event_id, first.event_id);
  const second = await publish("in_2");

  const deliveries = (cursor?: string) =>
    client.api.GET("/webhook/{webhook_id}/deliveries", {
      params: { path: { webhook_id: webhook.id }, query: { limit: 1, cursor } },
    });
  const delivered = await eventually(async () => {
    const page = await client.page(
      client.api.GET("/webhook/{webhook_id}/deliveries", {
        params: { path: { webhook_id: webhook.id }, query: { status: "succeeded" } },
      }),
    );
    return page.items.length === 2 ? page.items : undefined;
  });
  assert.deepEqual(
    delivered.map((d) => d.event_id),
    [second.event_id, first.event_id],
  );

  const page = await client.page(deliveries());
  assert.deepEqual(
    page.items.map((d) => d.id),
    [delivered[0].id],
  );
  assert.notEqual(page.nextCursor, null);
  const rest = await client.page(deliveries(page.nextCursor ?? undefined));
  assert.deepEqual(
    rest.items.map((d) => d.id),
    [delivered[1].id],
  );
  assert.equal(rest.nextCursor, null);
  const every: string[] = [];
  for await (const delivery of client.items(deliveries)) every.push(delivery.id);
  assert.deepEqual(
    every,
    delivered.map((d) => d.id),
  );

  const redelivered = await client.data(
    client.api.POST("/delivery/{delivery_id}/redeliver", {
      params: { path: { delivery_id: delivered[1].id } },
    }),
  );
  assert.equal(redelivered.status, "pending");
  const attempts = await eventually(async () => {
    const found = await client.data(
      client.api.GET("/delivery/{delivery_id}", {
        params: { path: { delivery_id: delivered[1].id } },
      }),
    );
    return found.attempts.length === 2 ? found.attempts : undefined;
  });
  assert.deepEqual(
    attempts.map((a) => a.status_code),
    [200, 200],
  );
});

async function rejected(call: Promise<unknown>, status: number): Promise<ApiError> {
  const error = await call.then(
    () => assert.fail(`expected a ${status}`),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ApiError, String(error));
  assert.equal(error.status, status);
  assert.ok(error.message.length > 0);
  return error;
}

test("each error status of AUTH_MODE=none is its typed error", async () => {
  const userId = newUserId();
  const eventType = await newEventType();
  const publish = (eventTypeName: string, payload: Record<string, unknown>) =>
    client.data(
      client.api.POST("/event", { body: { user_id: userId, event_type: eventTypeName, payload } }),
    );

  const badFilter = await rejected(
    client.data(
      client.api.POST("/webhook/register", {
        body: {
          user_id: userId,
          url: "https://example.com/h",
          event_type_id: eventType.id,
          filter: { a: { $near: 1 } },
        },
      }),
    ),
    400,
  );
  assert.match(badFilter.message, /\$near/);
  await rejected(publish("upload file", {}), 403);
  const unknownEvent = client.api.GET("/event/{event_id}", {
    params: { path: { event_id: randomUUID() } },
  });
  const unknown = await rejected(client.data(unknownEvent), 404);
  assert.equal(unknown.retryAfter, null);
  await rejected(client.data(client.api.POST("/event_type", { body: { name: eventType.name } })), 409);
  await rejected(publish(eventType.name, { invoice_id: "x".repeat(70_000), amount: 1 }), 413);
  const invalid = await rejected(publish(eventType.name, { invoice_id: "in_3", amount: -5 }), 422);
  assert.match(invalid.message, /payload at \/amount/);
});
