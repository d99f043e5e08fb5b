-- The scheduler's record of each job, read by `msitfeed status` from any process.
CREATE TABLE jobs (
    name        TEXT PRIMARY KEY,
    spec        TEXT NOT NULL DEFAULT '',
    last_start  TEXT NOT NULL DEFAULT '',
    last_end    TEXT NOT NULL DEFAULT '',
    last_error  TEXT NOT NULL DEFAULT '',
    runs        INTEGER NOT NULL DEFAULT 0,
    skipped     INTEGER NOT NULL DEFAULT 0,
    next_run    TEXT NOT NULL DEFAULT ''
);
