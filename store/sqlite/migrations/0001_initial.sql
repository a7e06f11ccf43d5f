-- Times are Unix milliseconds (UTC). seq columns give stable, keyset-pageable order.

CREATE TABLE stages (
	seq               INTEGER PRIMARY KEY AUTOINCREMENT,
	arn               TEXT NOT NULL UNIQUE,
	name              TEXT NOT NULL,
	active_session_id TEXT,
	recording         TEXT, -- JSON of the autoParticipantRecordingConfiguration, NULL if none
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL
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
	attributes       TEXT NOT NULL, -- JSON object
	capabilities     TEXT NOT NULL, -- comma-separated
	duration_minutes INTEGER NOT NULL,
	created_at       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	revoked_at       INTEGER,
	revoke_reason    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX participant_tokens_stage ON participant_tokens (stage_arn);

CREATE TABLE stage_sessions (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id TEXT NOT NULL UNIQUE,
	stage_arn  TEXT NOT NULL REFERENCES stages (arn) ON DELETE CASCADE,
	start_time INTEGER NOT NULL,
	end_time   INTEGER
);
CREATE INDEX stage_sessions_stage ON stage_sessions (stage_arn, seq);

CREATE TABLE participants (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id      TEXT NOT NULL REFERENCES stage_sessions (session_id) ON DELETE CASCADE,
	participant_id  TEXT NOT NULL,
	user_id         TEXT NOT NULL,
	attributes      TEXT NOT NULL,
	state           TEXT NOT NULL,
	first_join_time INTEGER NOT NULL,
	published       INTEGER NOT NULL DEFAULT 0,
	protocol        TEXT NOT NULL DEFAULT 'UNKNOWN',
	UNIQUE (session_id, participant_id)
);

CREATE TABLE participant_events (
	seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
	session_id            TEXT NOT NULL REFERENCES stage_sessions (session_id) ON DELETE CASCADE,
	participant_id        TEXT NOT NULL,
	name                  TEXT NOT NULL,
	remote_participant_id TEXT NOT NULL DEFAULT '',
	error_code            TEXT NOT NULL DEFAULT '',
	event_time            INTEGER NOT NULL
);
CREATE INDEX participant_events_participant ON participant_events (session_id, participant_id, seq);
