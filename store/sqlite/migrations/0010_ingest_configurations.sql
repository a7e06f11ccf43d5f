-- Ingest configurations: what an RTMP(S) encoder publishes to a stage with.

CREATE TABLE ingest_configurations (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	arn             TEXT NOT NULL UNIQUE,
	name            TEXT NOT NULL,
	-- '' for none. No foreign key: as in AWS, a configuration may name a
	-- stage that does not exist, or no longer does; its keys then publish
	-- nowhere.
	stage_arn       TEXT NOT NULL DEFAULT '',
	user_id         TEXT NOT NULL,
	attributes      TEXT NOT NULL, -- JSON object
	ingest_protocol TEXT NOT NULL,
	insecure_ingest INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);
CREATE INDEX ingest_configurations_stage ON ingest_configurations (stage_arn);

-- The credentials of each configuration: the primary one (redundant = 0)
-- and, with redundant ingest, a second. The stream key is a secret kept
-- as it is, like the other secrets of the server, since
-- GetIngestConfiguration shows it; its unique index finds the
-- configuration of a presented key. active is 1 while an encoder publishes
-- with the credential.
CREATE TABLE ingest_credentials (
	configuration_arn TEXT NOT NULL REFERENCES ingest_configurations (arn) ON DELETE CASCADE,
	redundant         INTEGER NOT NULL,
	participant_id    TEXT NOT NULL UNIQUE,
	stream_key        TEXT NOT NULL UNIQUE,
	active            INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (configuration_arn, redundant)
);
