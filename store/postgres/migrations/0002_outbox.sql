-- The event stream: one row per event, written in the transaction of the
-- fact it tells of. Rows outlive their stage, so there is no foreign key.
--
-- seq comes from the identity's sequence, one value at a time (CACHE 1), and
-- is drawn only while the writer holds the outbox lock (see appendEvent), so
-- rows commit in seq order.
CREATE TABLE outbox (
	seq         BIGINT GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
	id          TEXT NOT NULL UNIQUE, -- UUID of the envelope
	stage_arn   TEXT NOT NULL,
	detail_type TEXT NOT NULL,
	event_name  TEXT NOT NULL,
	body        JSONB NOT NULL, -- the envelope's detail
	created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_stage ON outbox (stage_arn, seq);
CREATE INDEX outbox_created ON outbox (created_at);
