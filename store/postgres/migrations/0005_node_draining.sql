-- A draining node takes no new stages: placement skips it.
ALTER TABLE node ADD COLUMN draining BOOLEAN NOT NULL DEFAULT false;
