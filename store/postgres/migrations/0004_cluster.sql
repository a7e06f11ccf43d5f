-- The nodes of a cluster, as each last reported itself.
CREATE TABLE node (
	id           TEXT PRIMARY KEY,
	url          TEXT NOT NULL,
	participants INTEGER NOT NULL,
	cpu          DOUBLE PRECISION NOT NULL,
	started_at   TIMESTAMPTZ NOT NULL,
	heartbeat_at TIMESTAMPTZ NOT NULL
);

-- Where each stage's media lives, until the lease runs out. No foreign key
-- to stages, nor to node: the placement of a deleted stage, or of a node
-- never seen, is released or taken over like any other.
CREATE TABLE stage_host (
	stage_arn   TEXT PRIMARY KEY,
	node_id     TEXT NOT NULL,
	lease_until TIMESTAMPTZ NOT NULL
);
CREATE INDEX stage_host_node ON stage_host (node_id);
CREATE INDEX stage_host_lease ON stage_host (lease_until);

-- Secrets every node must hold alike, stored by the first that needs one.
CREATE TABLE shared_secret (
	name       TEXT PRIMARY KEY,
	value      BYTEA NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
