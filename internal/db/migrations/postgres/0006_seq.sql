-- PostgreSQL twin of sqlite/0006_seq.sql. The order in which posts were
-- stored: on PostgreSQL, writers of items take a transaction-level advisory
-- lock first (db.Engine.LockTx), so max(seq) + 1 is handed out in commit
-- order here too. Existing posts are numbered in first-seen order (the
-- times are fixed-width strings in one zone, so text order is time order).
ALTER TABLE items ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
UPDATE items SET seq = r.n
    FROM (SELECT board, ntt_seq_no, row_number() OVER (ORDER BY first_seen, board, ntt_seq_no) AS n FROM items) AS r
    WHERE items.board = r.board AND items.ntt_seq_no = r.ntt_seq_no;
CREATE UNIQUE INDEX items_seq ON items(seq);

ALTER TABLE digests ADD COLUMN seq_start BIGINT NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN seq_end BIGINT NOT NULL DEFAULT 0;
UPDATE digests SET
    seq_start = (SELECT coalesce(max(seq), 0) FROM items WHERE first_seen <= digests.period_start),
    seq_end = (SELECT coalesce(max(seq), 0) FROM items WHERE first_seen <= digests.period_end);

CREATE INDEX items_updated ON items(updated);
