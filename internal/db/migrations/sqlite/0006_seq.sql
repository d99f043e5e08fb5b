-- The order in which posts were stored, given inside the transaction that
-- stores each one. SQLite has one writer at a time, and a transaction that
-- writes sees every commit before it, so max(seq) + 1 is handed out in
-- commit order: a digest that covers seq up to N has every post that will
-- ever have seq <= N. Existing posts are numbered in first-seen order.
ALTER TABLE items ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE items SET seq = r.n
    FROM (SELECT rowid AS id, row_number() OVER (ORDER BY julianday(first_seen), rowid) AS n FROM items) AS r
    WHERE items.rowid = r.id;
CREATE UNIQUE INDEX items_seq ON items(seq);

-- A digest covers the posts with seq in (seq_start, seq_end]. Digests made
-- before this are given the range of their first-seen period.
ALTER TABLE digests ADD COLUMN seq_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN seq_end INTEGER NOT NULL DEFAULT 0;
UPDATE digests SET
    seq_start = (SELECT coalesce(max(seq), 0) FROM items WHERE julianday(first_seen) <= julianday(digests.period_start)),
    seq_end = (SELECT coalesce(max(seq), 0) FROM items WHERE julianday(first_seen) <= julianday(digests.period_end));

-- Each save stamps "updated" later than any stored one (a feed's entries
-- must not share an updated instant): the latest is read from this index.
CREATE INDEX items_updated ON items(updated);
