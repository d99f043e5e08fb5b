-- Where a post's date came from: '' its own page, 'list' the board's list,
-- 'seen' the day msitfeed first stored it (the site showed no date).
ALTER TABLE items ADD COLUMN date_from TEXT NOT NULL DEFAULT '';

-- What a crawl run could read of the list rows, and why it is degraded.
ALTER TABLE crawl_runs ADD COLUMN list_rows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_runs ADD COLUMN missing_title INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_runs ADD COLUMN missing_date INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_runs ADD COLUMN missing_department INTEGER NOT NULL DEFAULT 0;
ALTER TABLE crawl_runs ADD COLUMN degraded TEXT NOT NULL DEFAULT '';
