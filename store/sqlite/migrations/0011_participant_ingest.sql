-- The ingest configuration of a participant that is an RTMP(S) encoder
-- ('' for any other), and whether that configuration has redundant
-- ingest (the API's ingestConfigurationArn and redundantIngest).

ALTER TABLE participants ADD COLUMN ingest_configuration_arn TEXT NOT NULL DEFAULT '';
ALTER TABLE participants ADD COLUMN redundant_ingest INTEGER NOT NULL DEFAULT 0;
