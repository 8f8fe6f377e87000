-- Portal links (SPEC section 15): a portal session is a user key that expires, handed to a
-- browser in a link; marked so that DELETE /portal/session/{id} revokes only these and a
-- refusal can say that the link expired or was revoked.
-- depends: 0011.api-key-lifetimes

ALTER TABLE api_keys ADD COLUMN portal boolean NOT NULL DEFAULT false;
-- A link acts for one user and always ends.
ALTER TABLE api_keys ADD CONSTRAINT api_keys_portal_user_and_expiry
    CHECK (NOT portal OR (user_id IS NOT NULL AND expires_at IS NOT NULL));
