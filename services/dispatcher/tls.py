"""TLS for endpoints that ask for more than the system's defaults (SPEC §17): a client
certificate to present, and a CA to trust besides the system's trusted CAs."""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
import uuid
from typing import Any

MAX_CACHED_CONTEXTS = 10_000


def client_context(tls: dict[str, Any]) -> ssl.SSLContext:
    """A context that verifies the server as the system does, trusts `tls["ca"]` too when
    given, and presents `tls["client_certificate"]` (opened) when given."""
    context = ssl.create_default_context()
    if tls.get("ca"):
        context.load_verify_locations(cadata=tls["ca"])
    certificate = tls.get("client_certificate")
    if certificate is not None:
        # ssl loads a certificate chain only from files: the key is written to a private
        # directory (0700, file 0600) and removed as soon as it is loaded.
        with tempfile.TemporaryDirectory(prefix="client-tls-") as directory:
            path = os.path.join(directory, "chain.pem")
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as chain:
                chain.write(certificate["private_key"].strip() + "\n")
                chain.write(certificate["certificate"].strip() + "\n")
            context.load_cert_chain(path)
    return context


class TlsContexts:
    """One SSL context per webhook, made again when its TLS configuration changes; its
    connections are pooled apart from every other context's (aiohttp keys them by it)."""

    def __init__(self) -> None:
        self.contexts: dict[uuid.UUID, tuple[bytes, ssl.SSLContext]] = {}

    def context_for(self, webhook_id: uuid.UUID, tls: dict[str, Any]) -> ssl.SSLContext:
        certificate = tls.get("client_certificate") or {}
        material = (tls.get("ca"), certificate.get("certificate"), certificate.get("private_key"))
        fingerprint = hashlib.sha256(repr(material).encode()).digest()
        cached = self.contexts.get(webhook_id)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        context = client_context(tls)
        if len(self.contexts) >= MAX_CACHED_CONTEXTS:
            self.contexts.clear()  # bounds memory; a webhook seen again is loaded again
        self.contexts[webhook_id] = (fingerprint, context)
        return context
