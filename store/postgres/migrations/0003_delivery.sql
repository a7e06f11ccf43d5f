-- The sinks of the event stream (webhooks, NATS), each with its own queue.
CREATE TABLE sink (
	name       TEXT PRIMARY KEY,
	cursor     BIGINT NOT NULL, -- seq of the last outbox row taken into the queue
	created_at TIMESTAMPTZ NOT NULL
);

-- The events a sink has taken in and not yet settled.
CREATE TABLE delivery (
	sink        TEXT NOT NULL REFERENCES sink (name),
	seq         BIGINT NOT NULL, -- the outbox row
	stage_arn   TEXT NOT NULL,
	enqueued_at TIMESTAMPTZ NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_try    TIMESTAMPTZ, -- NULL: at once
	last_error  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (sink, seq)
);
CREATE INDEX delivery_seq ON delivery (seq);

-- The events a sink gave up on. The outbox row stays while one refers to it.
CREATE TABLE dead_letter (
	sink        TEXT NOT NULL REFERENCES sink (name),
	seq         BIGINT NOT NULL,
	event_id    TEXT NOT NULL,
	enqueued_at TIMESTAMPTZ NOT NULL,
	dead_at     TIMESTAMPTZ NOT NULL,
	attempts    INTEGER NOT NULL,
	last_error  TEXT NOT NULL,
	PRIMARY KEY (sink, seq)
);
CREATE UNIQUE INDEX dead_letter_event ON dead_letter (sink, event_id);
CREATE INDEX dead_letter_seq ON dead_letter (seq);
