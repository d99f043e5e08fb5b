-- PostgreSQL twin of sqlite/0004_revisit.sql.
ALTER TABLE items ADD COLUMN checked TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE items SET checked = updated;
CREATE INDEX items_board_checked ON items(board, checked);

ALTER TABLE crawl_runs ADD COLUMN revisited INTEGER NOT NULL DEFAULT 0;
