-- PostgreSQL twin of sqlite/0003_jobs.sql.
CREATE TABLE jobs (
    name        TEXT COLLATE "C" PRIMARY KEY,
    spec        TEXT NOT NULL DEFAULT '',
    last_start  TEXT COLLATE "C" NOT NULL DEFAULT '',
    last_end    TEXT COLLATE "C" NOT NULL DEFAULT '',
    last_error  TEXT NOT NULL DEFAULT '',
    runs        BIGINT NOT NULL DEFAULT 0,
    skipped     BIGINT NOT NULL DEFAULT 0,
    next_run    TEXT COLLATE "C" NOT NULL DEFAULT ''
);
