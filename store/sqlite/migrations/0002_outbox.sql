-- The event stream: one row per event, written in the transaction of the
-- fact it tells of. Rows outlive their stage, so there is no foreign key.
CREATE TABLE outbox (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	id          TEXT NOT NULL UNIQUE, -- UUID of the envelope
	stage_arn   TEXT NOT NULL,
	detail_type TEXT NOT NULL,
	event_name  TEXT NOT NULL,
	body        TEXT NOT NULL, -- JSON of the envelope's detail
	created_at  INTEGER NOT NULL
);
CREATE INDEX outbox_stage ON outbox (stage_arn, seq);
