-- Operator tooling (SPEC section 20): API keys that expire, and when each was last used.
-- depends: 0010.deliveries-claim-room

-- NULL: the key never expires. An expired key stays listed (and revocable) until revoked.
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;
-- NULL: never used. Written in the background at most about once a minute per key and
-- process (services/common/key_usage.py), so it may be up to a minute behind.
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
