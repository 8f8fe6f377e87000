ALTER TABLE webhook_registrations DROP COLUMN signature_scheme;
DELETE FROM api_keys WHERE admin;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_user_or_admin;
ALTER TABLE api_keys ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE api_keys DROP COLUMN admin;
