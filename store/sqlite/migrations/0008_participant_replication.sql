-- Participant replication: a publishing participant of one stage copied
-- into another as a replica with the same participant id.

-- One row per replication, ACTIVE until it stops. At most one ACTIVE
-- replication of a participant into a destination. The rows of a source
-- stage go with it; those into a deleted destination stay, STOPPED.
CREATE TABLE participant_replications (
	seq                      INTEGER PRIMARY KEY AUTOINCREMENT,
	source_stage_arn         TEXT NOT NULL REFERENCES stages (arn) ON DELETE CASCADE,
	participant_id           TEXT NOT NULL,
	source_session_id        TEXT NOT NULL,
	destination_stage_arn    TEXT NOT NULL,
	destination_session_id   TEXT NOT NULL,
	state                    TEXT NOT NULL,
	reconnect_window_seconds INTEGER NOT NULL DEFAULT 0,
	start_time               INTEGER NOT NULL,
	end_time                 INTEGER
);
CREATE INDEX participant_replications_source ON participant_replications (source_stage_arn, participant_id, seq);
CREATE INDEX participant_replications_destination ON participant_replications (destination_stage_arn, state);
CREATE UNIQUE INDEX participant_replications_active ON participant_replications (source_stage_arn, participant_id, destination_stage_arn)
	WHERE state = 'ACTIVE';

-- A participant's replication: its type ('' for none, SOURCE, REPLICA),
-- its state ('' for none, ACTIVE, STOPPED) and, for a replica, the stage
-- and session it is a replica from.
ALTER TABLE participants ADD COLUMN replication_type TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN replication_state TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN source_stage_arn TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN source_session_id TEXT NOT NULL DEFAULT '';

-- Events of or about replicas, and the destination of REPLICATION_STARTED
-- and REPLICATION_STOPPED.
ALTER TABLE participant_events ADD COLUMN replica INTEGER NOT NULL DEFAULT 0;
ALTER TABLE participant_events ADD COLUMN destination_stage_arn TEXT NOT NULL DEFAULT '';
ALTER TABLE participant_events ADD COLUMN destination_session_id TEXT NOT NULL DEFAULT '';
