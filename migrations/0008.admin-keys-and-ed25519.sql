-- Security additions (SPEC section 12): admin keys, and per-webhook signature schemes.
-- depends: 0007.outbox-trace-context

-- An admin key acts for every user, so it has none of its own.
ALTER TABLE api_keys ADD COLUMN admin boolean NOT NULL DEFAULT false;
ALTER TABLE api_keys ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_user_or_admin
    CHECK ((admin AND user_id IS NULL) OR (NOT admin AND user_id IS NOT NULL));

-- How deliveries are signed: `hmac` (v1, the shared whsec_ secret) or `ed25519` (v1a; the
-- private key is stored, encrypted like secrets, and the endpoint holds the whpk_ public key).
-- Each stored key says its own scheme by its prefix (whsec_ / whsk_), so during a rotation
-- that changed the scheme the previous key still signs in its own.
ALTER TABLE webhook_registrations ADD COLUMN signature_scheme text NOT NULL DEFAULT 'hmac'
    CHECK (signature_scheme IN ('hmac', 'ed25519'));
