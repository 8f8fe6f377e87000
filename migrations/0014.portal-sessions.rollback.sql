-- Without the mark a session would pass for an ordinary user key: it goes with the column,
-- and the services running now forget it at once (services/common/revocation.py).
SELECT pg_notify('api_key_revoked', key_hash) FROM api_keys WHERE portal AND revoked_at IS NULL;
DELETE FROM api_keys WHERE portal;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_portal_user_and_expiry;
ALTER TABLE api_keys DROP COLUMN portal;
