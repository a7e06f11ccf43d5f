-- Compositions: a stage composed into one stream and sent to its
-- destinations, with the encoder and storage configurations each uses.

CREATE TABLE compositions (
	seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	arn               TEXT NOT NULL UNIQUE,
	-- No foreign key: as in AWS, a composition outlives its stage.
	stage_arn         TEXT NOT NULL,
	state             TEXT NOT NULL,
	layout            JSONB NOT NULL, -- the layout configuration, with its defaults
	destinations      JSONB NOT NULL, -- an array: each destination's configuration and state
	-- NULL when the request gave none; no two compositions share one.
	idempotency_token TEXT UNIQUE,
	start_time        TIMESTAMPTZ, -- NULL until it starts
	end_time          TIMESTAMPTZ, -- NULL until it ends
	created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX compositions_stage ON compositions (stage_arn);

-- The encoder and storage configurations the destinations of each
-- composition name, written with it: ListCompositions finds those of an
-- encoder configuration here, and deleting a configuration the ones that
-- use it.
CREATE TABLE composition_configurations (
	composition_arn   TEXT NOT NULL REFERENCES compositions (arn) ON DELETE CASCADE,
	configuration_arn TEXT NOT NULL,
	PRIMARY KEY (composition_arn, configuration_arn)
);
CREATE INDEX composition_configurations_configuration ON composition_configurations (configuration_arn);
