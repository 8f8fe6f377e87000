// The form's endpoint authentication and mutual TLS (SPEC §17). Secrets are write-only: the
// form says whether one is stored, never what it is; left empty on Edit the stored one is
// kept, and `None` (authentication) or `Remove` (the certificate) sends null.

import { h, time } from "./dom.js";
import { FieldProblem } from "./form_fields.js";

const BASIC = "basic";
const OAUTH2 = "oauth2_client_credentials";
const KINDS = [
  ["none", "None"],
  [BASIC, "Basic (username and password)"],
  [OAUTH2, "OAuth2 client credentials"],
];
// A body field → the form field that shows its errors (see webhook_form.js's FIELD_OF).
export const ENDPOINT_FIELD_OF = {
  auth: "auth-type",
  "auth.username": "auth-username",
  "auth.password": "auth-password",
  "auth.token_url": "auth-token-url",
  "auth.client_id": "auth-client-id",
  "auth.client_secret": "auth-client-secret",
  "auth.scope": "auth-scope",
  "auth.audience": "auth-audience",
  tls_client_certificate: "tls-certificate",
  "tls_client_certificate.certificate": "tls-certificate",
  "tls_client_certificate.private_key": "tls-private-key",
  tls_ca: "tls-ca",
};
const OAUTH2_WORDS = ["token_url", "client_id", "scope", "audience"];

/** An API message's field path without the kind of auth it names (`auth.basic.password`
 * concerns the password field whatever the kind). */
export function withoutKind(path) {
  return path[0] === "auth" && (path[1] === BASIC || path[1] === OAUTH2) ? [path[0], ...path.slice(2)] : path;
}

/** The two sections, and `read()`: the body fields to send (a field left out: unchanged). */
export function endpointAuthFields(webhook, { field, text, textArea }) {
  const auth = authSection(webhook?.auth ?? null, field, text);
  const tls = tlsSection(webhook, field, textArea);
  return {
    sections: [auth.element, tls.element],
    read: () => ({ ...auth.read(), ...tls.read() }),
  };
}

function authSection(stored, field, text) {
  const basic = stored?.type === BASIC ? stored : null;
  const oauth2 = stored?.type === OAUTH2 ? stored : null;
  const kind = h("select", { id: "auth-type", name: "auth-type", onchange: () => showKind() },
    KINDS.map(([value, label]) => h("option", { value, selected: (stored?.type ?? "none") === value }, label)));
  const secret = (id) => text(id, null, { type: "password", autocomplete: "new-password" });
  const kept = (isStored, what) =>
    isStored ? `A ${what} is stored (never shown). Leave this empty to keep it.` : null;
  const username = text("auth-username", basic?.username);
  const password = secret("auth-password");
  const tokenUrl = text("auth-token-url", oauth2?.token_url, { type: "url", inputmode: "url" });
  const clientId = text("auth-client-id", oauth2?.client_id);
  const clientSecret = secret("auth-client-secret");
  const scope = text("auth-scope", oauth2?.scope);
  const audience = text("auth-audience", oauth2?.audience);
  const basicFields = h("div", { class: "subfields" },
    field("auth-username", "Username", username),
    field("auth-password", "Password", password, kept(basic?.has_password, "password")));
  const oauth2Fields = h("div", { class: "subfields" },
    field("auth-token-url", "Token URL", tokenUrl,
      "Where the dispatcher asks for a token (RFC 6749 client credentials); checked as the URL is."),
    field("auth-client-id", "Client id", clientId),
    field("auth-client-secret", "Client secret", clientSecret, kept(oauth2?.has_secret, "client secret")),
    field("auth-scope", "Scope (optional)", scope),
    field("auth-audience", "Audience (optional)", audience));
  function showKind() {
    basicFields.hidden = kind.value !== BASIC;
    oauth2Fields.hidden = kind.value !== OAUTH2;
  }
  showKind();
  const element = h("details", { class: "section", open: stored !== null },
    h("summary", {}, "Endpoint authentication"),
    field("auth-type", "Authentication", kind, stored
      ? "How the dispatcher proves itself to your endpoint. None removes what is stored."
      : "How the dispatcher proves itself to your endpoint: it sets the Authorization header."),
    basicFields,
    oauth2Fields);

  /** A secret left empty keeps the stored one only if nothing else of its kind changed:
   * the API takes `auth` whole, and the stored secret never comes back to the page. */
  function withSecret(given, name, input, current) {
    if (input.value) return { ...given, [name]: input.value };
    if (current === null) return given; // the API says that it is missing
    const shown = given.type === BASIC ? ["username"] : OAUTH2_WORDS;
    const same = shown.every((key) => (given[key] ?? null) === (current[key] ?? null));
    if (same) return undefined;
    throw new FieldProblem(`auth.${name}`,
      `auth.${name}: type it again to change the other fields (the stored one is never shown)`);
  }

  function read() {
    if (kind.value === "none") return stored === null ? {} : { auth: null };
    let given;
    if (kind.value === BASIC) {
      given = withSecret({ type: BASIC, username: username.value.trim() }, "password", password, basic);
    } else {
      const inputs = { token_url: tokenUrl, client_id: clientId, scope, audience };
      const present = Object.fromEntries(Object.entries(inputs)
        .map(([name, input]) => [name, input.value.trim()])
        .filter(([, value]) => value !== ""));
      given = withSecret({ type: OAUTH2, ...present }, "client_secret", clientSecret, oauth2);
    }
    return given === undefined ? {} : { auth: given };
  }
  return { element, read };
}

function tlsSection(webhook, field, textArea) {
  const stored = webhook?.tls_client_certificate ?? null;
  const storedCa = webhook?.tls_ca ?? null;
  const certificate = textArea("tls-certificate", null, "6");
  const privateKey = textArea("tls-private-key", null, "6");
  const ca = textArea("tls-ca", storedCa, "6");
  const remove = stored ? h("input", { type: "checkbox", id: "tls-remove", name: "tls-remove" }) : null;
  const element = h("details", { class: "section", open: stored !== null || storedCa !== null },
    h("summary", {}, "Mutual TLS"),
    stored
      ? h("p", { id: "tls-stored", class: "hint" }, "A client certificate is stored: ", stored.subject,
        ", expires ", time(stored.expires_at), ". Its private key is never shown; leave both fields empty to keep it.")
      : null,
    field("tls-certificate", "Client certificate (PEM, optional)", certificate,
      "Presented to your https endpoint: the certificate, then any intermediates."),
    field("tls-private-key", "Its private key (PEM)", privateKey,
      "Unencrypted PEM; stored encrypted and never shown again."),
    stored
      ? h("div", { class: "choice" }, remove, h("label", { for: "tls-remove" }, "Remove the stored client certificate"))
      : null,
    field("tls-ca", "CA certificate to trust (PEM, optional)", ca,
      "Trusted for this endpoint's server certificate, in addition to the system's CAs. Empty: the system's only."));

  function read() {
    const body = {};
    const pair = { certificate: certificate.value.trim(), private_key: privateKey.value.trim() };
    if (remove?.checked && (pair.certificate || pair.private_key)) {
      throw new FieldProblem("tls_client_certificate",
        "tls_client_certificate: either remove the stored certificate or paste a new one, not both");
    }
    if (remove?.checked) body.tls_client_certificate = null;
    else if (pair.certificate || pair.private_key) {
      if (!pair.certificate) {
        throw new FieldProblem("tls_client_certificate.certificate",
          "tls_client_certificate.certificate: paste the certificate that goes with the private key");
      }
      if (!pair.private_key) {
        throw new FieldProblem("tls_client_certificate.private_key",
          "tls_client_certificate.private_key: paste the certificate's private key too" +
            (stored ? " (the stored one is never shown)" : ""));
      }
      body.tls_client_certificate = pair;
    }
    const trusted = ca.value.trim() || null;
    if (trusted !== (storedCa?.trim() || null)) body.tls_ca = trusted;
    return body;
  }
  return { element, read };
}
