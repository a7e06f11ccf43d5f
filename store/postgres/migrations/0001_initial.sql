-- Times are timestamptz kept at millisecond precision. seq columns give a
-- stable, keyset-pageable order.

CREATE TABLE stages (
	seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	arn               TEXT NOT NULL UNIQUE,
	name              TEXT NOT NULL,
	active_session_id TEXT,
	recording         JSONB, -- the autoParticipantRecordingConfiguration, NULL if none
	created_at        TIMESTAMPTZ NOT NULL,
	updated_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE tags (
	resource_arn TEXT NOT NULL,
	key          TEXT NOT NULL,
	value        TEXT NOT NULL,
	PRIMARY KEY (resource_arn, key)
);

CREATE TABLE participant_tokens (
	participant_id   TEXT PRIMARY KEY,
	stage_arn        TEXT NOT NULL REFERENCES stages (arn) ON DELETE CASCADE,
	user_id          TEXT NOT NULL,
	attributes       JSONB NOT NULL,
	capabilities     TEXT[] NOT NULL,
	duration_minutes INTEGER NOT NULL,
	created_at       TIMESTAMPTZ NOT NULL,
	expires_at       TIMESTAMPTZ NOT NULL,
	revoked_at       TIMESTAMPTZ,
	revoke_reason    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX participant_tokens_stage ON participant_tokens (stage_arn);

CREATE TABLE stage_sessions (
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	session_id TEXT NOT NULL UNIQUE,
	stage_arn  TEXT NOT NULL REFERENCES stages (arn) ON DELETE CASCADE,
	start_time TIMESTAMPTZ NOT NULL,
	end_time   TIMESTAMPTZ
);
CREATE INDEX stage_sessions_stage ON stage_sessions (stage_arn, seq);

CREATE TABLE participants (
	seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	session_id      TEXT NOT NULL REFERENCES stage_sessions (session_id) ON DELETE CASCADE,
	participant_id  TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	attributes      JSONB NOT NULL,
	state           TEXT NOT NULL,
	first_join_time TIMESTAMPTZ NOT NULL,
	published       BOOLEAN NOT NULL DEFAULT FALSE,
	protocol        TEXT NOT NULL DEFAULT 'UNKNOWN',
	UNIQUE (session_id, participant_id)
);

CREATE TABLE participant_events (
	seq                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	session_id            TEXT NOT NULL REFERENCES stage_sessions (session_id) ON DELETE CASCADE,
	participant_id        TEXT NOT NULL,
	name                  TEXT NOT NULL,
	remote_participant_id TEXT NOT NULL DEFAULT '',
	error_code            TEXT NOT NULL DEFAULT '',
	event_time            TIMESTAMPTZ NOT NULL
);
CREATE INDEX participant_events_participant ON participant_events (session_id, participant_id, seq);
