-- Token exchange. TOKEN_EXCHANGED events: what the participant's token
-- said before and after the exchange (JSON of capabilities, attributes,
-- userId and expirationTime), '' on other events. A self-signed token
-- exchanged: not_before, the issue time (Unix milliseconds) of the token
-- exchanged for, before which no token of its participant is accepted;
-- 0 if none was.

ALTER TABLE participant_events ADD COLUMN previous_token TEXT NOT NULL DEFAULT '';
ALTER TABLE participant_events ADD COLUMN new_token TEXT NOT NULL DEFAULT '';
ALTER TABLE participant_tokens ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
