// Against a stack with AUTH_MODE=api_key and a rate limit of one request a second
// (tests/test_typescript_sdk.py sets WEBHOOKS_URL and WEBHOOKS_API_KEY): 401 without a key,
// and 429 with its Retry-After as `retryAfter`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, RateLimited, WebhooksClient } from "../src/index.js";

const BASE_URL = process.env.WEBHOOKS_URL ?? "http://127.0.0.1:8081";
const API_KEY = process.env.WEBHOOKS_API_KEY ?? "";

test("no key is a 401", async () => {
  const anonymous = new WebhooksClient(BASE_URL);
  await assert.rejects(anonymous.data(anonymous.api.GET("/event_type")), (error: unknown) => {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, 401);
    return true;
  });
});

test("over the rate limit is a 429 with retryAfter", async () => {
  const client = new WebhooksClient(BASE_URL, { apiKey: API_KEY });
  const error = await (async () => {
    for (let i = 0; i < 10; i += 1) await client.data(client.api.GET("/event_type"));
  })().then(
    () => assert.fail("no 429 in 10 requests"),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof RateLimited, String(error));
  assert.equal(error.status, 429);
  assert.ok(error.retryAfter !== null && error.retryAfter >= 1, String(error.retryAfter));
});
