"""Shapes of a webhook's endpoint authentication (SPEC §17): `auth`, `tls_client_certificate`
and `tls_ca` as a request gives them, and as answers show them, never with a secret."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from services.common.api.edge import refuse
from services.common.api.shapes import ApiTime, Shape
from services.common.endpoint_auth import SECRET_FIELD

from .url_grammar import MAX_URL_LENGTH, URL_PATTERN, url_problem

MAX_CREDENTIAL_LENGTH = 1024
# One line of visible characters or spaces: the credentials go into a header or a form.
_LINE = r"^[^\x00-\x1f\x7f]*$"
Credential = Annotated[str, Field(min_length=1, max_length=MAX_CREDENTIAL_LENGTH, pattern=_LINE)]
AUTH_HELP = (
    "How the dispatcher authenticates to the endpoint; null (or left out) is none. With it, "
    "the dispatcher sets `Authorization` itself, so custom_headers may not set it in the "
    "same request; a custom `Authorization` stored earlier is replaced by this one. The "
    "password or client secret is stored encrypted with SECRETS_KEY and never shown again."
)


class _AuthRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicAuth(_AuthRequest):
    """HTTP Basic (RFC 7617): `Authorization: Basic base64(username:password)`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "basic", "username": "webhooks", "password": "s3cret"}]
        }
    )

    type: Literal["basic"]
    # RFC 7617: the user-id may not contain a colon.
    username: str = Field(
        min_length=1, max_length=MAX_CREDENTIAL_LENGTH, pattern=r"^[^:\x00-\x1f\x7f]*$"
    )
    password: Credential


def check_token_url(value: Any) -> Any:
    problem = url_problem(value) if isinstance(value, str) else "url must be a string"
    if problem:
        raise refuse(problem.replace("url ", "auth.token_url ", 1))
    return value


TokenUrl = Annotated[
    str,
    Field(
        max_length=MAX_URL_LENGTH,
        pattern=URL_PATTERN,
        description="The token endpoint; checked as the webhook's url is (ALLOW_PRIVATE_URLS).",
        examples=["https://auth.example.com/oauth2/token"],
    ),
    BeforeValidator(check_token_url),
]
OptionalWord = Annotated[
    str | None, Field(min_length=1, max_length=MAX_CREDENTIAL_LENGTH, pattern=_LINE)
]


class OAuth2ClientCredentials(_AuthRequest):
    """OAuth2 client credentials (RFC 6749 §4.4): the dispatcher gets a token from
    `token_url` and sends `Authorization: Bearer <token>`, refetching it shortly before it
    expires and after the endpoint answers 401."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "oauth2_client_credentials",
                    "token_url": "https://auth.example.com/oauth2/token",
                    "client_id": "webhooks",
                    "client_secret": "s3cret",
                    "scope": "hooks:write",
                }
            ]
        }
    )

    type: Literal["oauth2_client_credentials"]
    token_url: TokenUrl
    client_id: Credential
    client_secret: Credential
    scope: OptionalWord = Field(None, description="Sent as `scope` when given.")
    audience: OptionalWord = Field(None, description="Sent as `audience` when given.")


EndpointAuth = Annotated[
    BasicAuth | OAuth2ClientCredentials, Field(discriminator="type", description=AUTH_HELP)
]


# --- TLS: a client certificate to present, a CA to trust -----------------------------------

MAX_PEM_LENGTH = 32 * 1024


CERTIFICATE_FIELD = "tls_client_certificate.certificate"
PRIVATE_KEY_FIELD = "tls_client_certificate.private_key"


def certificates_of(pem: str, field: str) -> list[x509.Certificate]:
    """The certificates of a PEM text (a chain: the first is the leaf); refused if none."""
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        certificates = []
    if not certificates:
        raise refuse(f"{field} must be one or more PEM certificates (-----BEGIN CERTIFICATE-----)")
    return certificates


def check_certificates(pem: str | None, field: str = CERTIFICATE_FIELD) -> str | None:
    if pem is not None:
        certificates_of(pem, field)
    return pem


def check_private_key(pem: str) -> str:
    try:
        load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise refuse(
            f"{PRIVATE_KEY_FIELD} must be an unencrypted PEM private key (it has a password)"
        ) from None
    except (ValueError, UnicodeError):
        raise refuse(
            f"{PRIVATE_KEY_FIELD} must be a PEM private key (-----BEGIN PRIVATE KEY-----)"
        ) from None
    return pem


CertificatePem = Annotated[
    str,
    Field(max_length=MAX_PEM_LENGTH, description="PEM: the certificate, then any intermediates."),
    AfterValidator(check_certificates),
]
PrivateKeyPem = Annotated[
    str,
    Field(
        max_length=MAX_PEM_LENGTH,
        description="PEM, unencrypted; stored encrypted with SECRETS_KEY and never shown.",
    ),
    AfterValidator(check_private_key),
]
TLS_CA_HELP = (
    "PEM: CA certificate(s) the dispatcher trusts for this endpoint's server certificate, in "
    "addition to the system's trusted CAs; null is the system's only."
)
TlsCa = Annotated[
    str | None,
    Field(max_length=MAX_PEM_LENGTH, description=TLS_CA_HELP),
    AfterValidator(lambda pem: check_certificates(pem, "tls_ca")),
]


class TlsClientCertificate(_AuthRequest):
    """The certificate the dispatcher presents to the https endpoint (mutual TLS)."""

    certificate: CertificatePem
    private_key: PrivateKeyPem

    @model_validator(mode="after")
    def key_matches(self) -> TlsClientCertificate:
        leaf = certificates_of(self.certificate, CERTIFICATE_FIELD)[0]
        key = load_pem_private_key(self.private_key.encode(), password=None)
        raw = (Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        if leaf.public_key().public_bytes(*raw) != key.public_key().public_bytes(*raw):
            raise refuse(f"{PRIVATE_KEY_FIELD} is not the key of the certificate")
        return self


TLS_CERTIFICATE_HELP = (
    "A client certificate the dispatcher presents to the https endpoint; null is none. "
    "Its private key is stored encrypted with SECRETS_KEY and never shown: answers show the "
    "certificate's subject and expiry."
)


def certificate_fields(given: TlsClientCertificate | None) -> dict[str, Any] | None:
    """A request's `tls_client_certificate` as stored (before sealing), with the subject and
    expiry that answers show."""
    if given is None:
        return None
    leaf = certificates_of(given.certificate, CERTIFICATE_FIELD)[0]
    return {
        "certificate": given.certificate,
        "private_key": given.private_key,
        "subject": leaf.subject.rfc4514_string(),
        "expires_at": leaf.not_valid_after_utc.isoformat(),
    }


class TlsCertificateShown(Shape):
    subject: str = Field(description="The certificate's subject (RFC 4514).")
    expires_at: ApiTime = Field(description="The certificate's notAfter.")
    private_key: None = Field(description="Never shown.")
    has_private_key: bool

    @model_validator(mode="before")
    @classmethod
    def hide(cls, stored: Any) -> Any:
        if isinstance(stored, dict):
            return {**stored, "private_key": None, "has_private_key": "private_key" in stored}
        return stored


# --- answers ----------------------------------------------------------------------------------


def auth_fields(auth: BaseModel | None) -> dict[str, Any] | None:
    """A request's `auth` as stored (before sealing): the fields given, null ones left out."""
    return None if auth is None else auth.model_dump(exclude_none=True)


def stored_columns(given: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Those of the endpoint-auth fields `names` in `given` (popped from it), as stored
    before sealing (services/common/endpoint_auth.py seals them)."""
    converters = {"auth": auth_fields, "tls_client_certificate": certificate_fields}
    return {
        name: converters.get(name, lambda value: value)(given.pop(name))
        for name in names
        if name in given
    }


def authorization_conflict(custom_headers: dict[str, str] | None, auth: Any) -> str | None:
    """Why a request may not send both: `auth` sets `Authorization`, so custom_headers may not."""
    if auth is None or not custom_headers:
        return None
    if any(name.lower() == "authorization" for name in custom_headers):
        return (
            "custom_headers may not set 'Authorization' together with auth: the dispatcher "
            "sets it from auth; drop one of them"
        )
    return None


def hidden(stored: Any, flag: str) -> Any:
    """A stored `auth` as answers show it: its secret field null, `flag` telling it is set."""
    if isinstance(stored, dict):
        secret = SECRET_FIELD.get(stored.get("type", ""))
        if secret is not None:
            return {**stored, secret: None, flag: stored.get(secret) is not None}
    return stored


class BasicAuthShown(Shape):
    type: Literal["basic"]
    username: str
    password: None = Field(description="Never shown.")
    has_password: bool = Field(description="A password is stored (encrypted).")

    @model_validator(mode="before")
    @classmethod
    def hide(cls, stored: Any) -> Any:
        return hidden(stored, "has_password")


class OAuth2Shown(Shape):
    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str
    client_secret: None = Field(description="Never shown.")
    has_secret: bool = Field(description="A client secret is stored (encrypted).")
    scope: str | None = None
    audience: str | None = None

    @model_validator(mode="before")
    @classmethod
    def hide(cls, stored: Any) -> Any:
        return hidden(stored, "has_secret")


AuthShown = Annotated[BasicAuthShown | OAuth2Shown, Field(discriminator="type")]
