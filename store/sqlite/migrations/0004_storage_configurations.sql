-- Storage configurations, and which one each stage's recording names.

CREATE TABLE storage_configurations (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	arn            TEXT NOT NULL UNIQUE,
	name           TEXT NOT NULL,
	s3_bucket_name TEXT NOT NULL,
	created_at     INTEGER NOT NULL
);

-- The storageConfigurationArn of the stage's recording, NULL for none, so
-- that deleting a storage configuration finds the stages that use it. No
-- foreign key: stages written before storage configurations existed may
-- name one that never did, and keep it until they are updated.
ALTER TABLE stages ADD COLUMN storage_configuration_arn TEXT;
UPDATE stages SET storage_configuration_arn = NULLIF(json_extract(recording, '$.storageConfigurationArn'), '')
	WHERE recording IS NOT NULL;
CREATE INDEX stages_storage_configuration ON stages (storage_configuration_arn);
