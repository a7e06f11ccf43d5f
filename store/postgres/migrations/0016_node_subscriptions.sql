-- A node's load counts the subscriptions it serves, its own stages' and,
-- as an edge, other nodes': placement fills a node up to a limit of them.

ALTER TABLE node ADD COLUMN subscriptions INTEGER NOT NULL DEFAULT 0;
