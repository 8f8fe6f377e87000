// The JSON API, called with the signed-in user's credential. The credential lives in
// sessionStorage only (gone when the tab closes), travels in the Authorization header,
// and never in a URL; no cookies are sent (so there is no CSRF to defend against).

const CREDENTIAL = "webhooks-console-credential";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** A 401: the credential is gone; the sign-in screen shows `message` as the reason. */
export class SignedOut extends Error {
  constructor(message, portal = false) {
    super(message);
    // A portal link's session (expired or revoked), not a key the user typed in.
    this.portal = portal;
  }
}

/**
 * A JSON body with `user_id` written as exact digits: user ids go up to 2^63 - 1, past what
 * a JavaScript number holds exactly.
 */
export class RawJson {
  constructor(value, userIdDigits) {
    if (!/^[1-9][0-9]{0,18}$/.test(userIdDigits)) throw new Error("user id must be digits");
    this.text = `{"user_id":${userIdDigits},${JSON.stringify(value).slice(1)}`;
  }
}

export function credential() {
  const stored = sessionStorage.getItem(CREDENTIAL);
  return stored ? JSON.parse(stored) : null;
}

export function signIn(value) {
  sessionStorage.setItem(CREDENTIAL, JSON.stringify(value));
}

export function signOut() {
  sessionStorage.removeItem(CREDENTIAL);
}

/** `body` for the signed-in user: with AUTH_MODE=none its `user_id`; with API keys the key says who. */
export function asSignedInUser(body) {
  const current = credential();
  return current && current.userId ? new RawJson(body, current.userId) : body;
}

/** `?user_id=` for routes that take it: with API keys the key says whose it is. */
export function userQuery() {
  const current = credential();
  return current && current.userId ? `user_id=${encodeURIComponent(current.userId)}` : "";
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const current = credential();
  if (current && current.apiKey) headers.Authorization = `Bearer ${current.apiKey}`;
  const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = body instanceof RawJson ? body.text : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, `the API could not be reached (${error.message})`);
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    envelope = { message: `HTTP ${response.status}`, data: {}, error: true };
  }
  if (response.status === 401) {
    signOut();
    throw new SignedOut(envelope.message, Boolean(current && current.portal));
  }
  if (!response.ok) throw new ApiError(response.status, envelope.message);
  return envelope;
}

/** A failure a screen cannot show where it happened (a 401 above all): the app decides. */
export function escalate(error) {
  window.dispatchEvent(new CustomEvent("console-error", { detail: error }));
}

export async function authMode() {
  return (await api("GET", "/auth_mode")).data.auth_mode;
}
