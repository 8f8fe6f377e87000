-- Security: API keys, stored only as hashes.
-- depends: 0003.delivery-schedule-rounds

-- A key is 32 random bytes, so a fast hash (sha256, hex) cannot be brute-forced;
-- the key itself is shown once, by `python -m services.registration create-api-key`.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id bigint NOT NULL CHECK (user_id > 0),
    key_hash text NOT NULL UNIQUE,
    -- The first characters of the key, to tell keys apart in listings and logs.
    prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE INDEX api_keys_user_id ON api_keys (user_id);
