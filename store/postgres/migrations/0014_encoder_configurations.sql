-- Encoder configurations: the video a composition encodes its output with.
-- They never change once made. Compositions, when they are stored, name
-- one; deleting one checks them then.

CREATE TABLE encoder_configurations (
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	arn        TEXT NOT NULL UNIQUE,
	name       TEXT NOT NULL,
	width      INTEGER NOT NULL,
	height     INTEGER NOT NULL,
	-- Frames per second: the model's float, a REAL (float4) here too.
	framerate  REAL NOT NULL,
	-- Bits per second.
	bitrate    INTEGER NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
