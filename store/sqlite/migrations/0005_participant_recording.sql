-- A participant's individual recording: its bucket, prefix and state, ''
-- while its stage does not record it (the API says DISABLED).

ALTER TABLE participants ADD COLUMN recording_bucket TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN recording_prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN recording_state TEXT NOT NULL DEFAULT '';
