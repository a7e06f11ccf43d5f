-- Encoder configurations: the video a composition encodes its output with.
-- They never change once made. Compositions, when they are stored, name
-- one; deleting one checks them then.

CREATE TABLE encoder_configurations (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	arn        TEXT NOT NULL UNIQUE,
	name       TEXT NOT NULL,
	width      INTEGER NOT NULL,
	height     INTEGER NOT NULL,
	-- Frames per second: the model's float, which a REAL holds exactly.
	framerate  REAL NOT NULL,
	-- Bits per second.
	bitrate    INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
