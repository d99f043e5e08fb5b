CREATE TABLE subscribers (
    id            INTEGER PRIMARY KEY,
    uid           TEXT NOT NULL UNIQUE,     -- random public id used in tokens; reveals nothing
    email         TEXT NOT NULL,            -- normalised: domain lower-cased
    email_key     TEXT NOT NULL UNIQUE,     -- lower-cased whole address, for case-insensitive uniqueness
    name          TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL CHECK (status IN ('pending','active','unsubscribed','bounced')),
    boards        TEXT NOT NULL DEFAULT '', -- comma-separated slugs; '' means all boards
    origin        TEXT NOT NULL CHECK (origin IN ('cli','import','web')),
    created       TEXT NOT NULL,
    confirmed     TEXT NOT NULL DEFAULT '',
    unsubscribed  TEXT NOT NULL DEFAULT '',
    bounces       INTEGER NOT NULL DEFAULT 0 -- permanent failures in a row
);
CREATE INDEX subscribers_status ON subscribers(status);

-- One row per digest; the recipient set is fixed in the same transaction
-- that creates it (one deliveries row each).
CREATE TABLE digests (
    id            INTEGER PRIMARY KEY,
    period_start  TEXT NOT NULL,            -- items first seen after this ...
    period_end    TEXT NOT NULL,            -- ... and up to this (UTC, fixed width)
    items         TEXT NOT NULL,            -- JSON array of "board/nttSeqNo"
    created       TEXT NOT NULL,
    finished      TEXT NOT NULL DEFAULT ''  -- set when no delivery is pending any more
);

-- The ledger: one row per (digest, recipient), pending -> sent | failed.
-- A row is marked sent in the statement that records the server's 250 to
-- DATA; the Message-ID is fixed when the row is created, so a message
-- resent after a crash carries the same id.
CREATE TABLE deliveries (
    digest_id     INTEGER NOT NULL REFERENCES digests(id) ON DELETE CASCADE,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    message_id    TEXT NOT NULL,
    boards        TEXT NOT NULL DEFAULT '', -- the subscriber's boards when the digest was made; '' = all
    since         TEXT NOT NULL DEFAULT '', -- joined during the period: only items first seen after this
    status        TEXT NOT NULL CHECK (status IN ('pending','sent','failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    sent          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (digest_id, subscriber_id)
);
CREATE INDEX deliveries_status ON deliveries(digest_id, status);
CREATE INDEX deliveries_subscriber ON deliveries(subscriber_id);
