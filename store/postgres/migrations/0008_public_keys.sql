-- Public keys that customers sign their own participant tokens with, and
-- the key each stored self-signed token was signed with.

CREATE TABLE public_keys (
	seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	arn         TEXT NOT NULL UNIQUE,
	name        TEXT NOT NULL,
	material    TEXT NOT NULL,
	-- One key is imported once: its fingerprint names it.
	fingerprint TEXT NOT NULL UNIQUE,
	created_at  TIMESTAMPTZ NOT NULL
);

-- The ARN of the public key a self-signed token was signed with, '' for a
-- token this server issued. Self-signed tokens are stored the first time
-- they are presented. No foreign key: a token outlives its key, for the
-- participants it made and their revocation.
ALTER TABLE participant_tokens ADD COLUMN public_key_arn TEXT NOT NULL DEFAULT '';
