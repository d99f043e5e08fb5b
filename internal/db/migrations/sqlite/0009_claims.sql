-- Claims on deliveries, so that several senders share one digest. A
-- sender claims a batch of pending deliveries by writing its name in
-- claimed_by and a deadline in claim_expires (milliseconds since 1970 on
-- the database's clock, never the sender's); it extends the deadline while
-- it works. Another sender skips rows whose claim has not expired, and
-- takes over those whose claimant died once it has.
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN claim_expires INTEGER NOT NULL DEFAULT 0;
-- Claims take pending rows in subscriber order: the index hands them over
-- in that order instead of sorting every pending row for each batch. It
-- serves every lookup the old (digest_id, status) index did.
DROP INDEX deliveries_status;
CREATE INDEX deliveries_pending ON deliveries(digest_id, status, subscriber_id);
