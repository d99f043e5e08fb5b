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

CREATE TABLE digests (
    id            INTEGER PRIMARY KEY,
    period_start  TEXT NOT NULL,
    period_end    TEXT NOT NULL,
    items         TEXT NOT NULL,            -- JSON array of "board/nttSeqNo"
    created       TEXT NOT NULL,
    finished      TEXT NOT NULL DEFAULT ''
);

CREATE TABLE deliveries (
    digest_id     INTEGER NOT NULL REFERENCES digests(id),
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
    message_id    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending','sent','failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    sent          TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (digest_id, subscriber_id)
);
CREATE INDEX deliveries_status ON deliveries(digest_id, status);
