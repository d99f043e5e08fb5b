-- PostgreSQL twin of sqlite/0009_claims.sql.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN claim_expires BIGINT NOT NULL DEFAULT 0;
DROP INDEX deliveries_status;
CREATE INDEX deliveries_pending ON deliveries(digest_id, status, subscriber_id);
