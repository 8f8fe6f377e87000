"""The `Authorization` a delivery carries to an endpoint that asks for one (SPEC §17)."""

from __future__ import annotations

from services.common.delivery_records import ClaimedDelivery
from services.common.endpoint_auth import BASIC, OAUTH2, basic_authorization

from .oauth2 import TokenCache


class Authorizer:
    """Makes the `Authorization` header of each delivery whose webhook has `auth` (opened)."""

    def __init__(self, tokens: TokenCache) -> None:
        self.tokens = tokens

    async def authorization(self, delivery: ClaimedDelivery) -> str:
        """Raises TokenUnavailable when an OAuth2 token cannot be had."""
        auth = delivery.auth
        assert auth is not None, "only deliveries with auth come here"
        if auth["type"] == BASIC:
            return basic_authorization(auth["username"], auth["password"])
        return await self.tokens.bearer(delivery.webhook_id, auth)

    def refused(self, delivery: ClaimedDelivery, authorization: str) -> None:
        """The endpoint answered 401 to `authorization`: a token is fetched afresh next time."""
        if delivery.auth is not None and delivery.auth["type"] == OAUTH2:
            self.tokens.drop(delivery.webhook_id, authorization)
