-- When each post's page was last fetched, so a crawl can fetch recent posts
-- again to notice edits their list row does not show (a body-only edit).
ALTER TABLE items ADD COLUMN checked TEXT NOT NULL DEFAULT '';
UPDATE items SET checked = updated;
CREATE INDEX items_board_checked ON items(board, checked);

-- How many stored posts a crawl run fetched again.
ALTER TABLE crawl_runs ADD COLUMN revisited INTEGER NOT NULL DEFAULT 0;
