-- Boards and the ids discovered or configured for them.
CREATE TABLE boards (
    slug        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    mid         TEXT NOT NULL DEFAULT '',
    mpid        TEXT NOT NULL DEFAULT '',
    bbsseqno    TEXT NOT NULL DEFAULT '',
    discovered  TEXT NOT NULL DEFAULT '',   -- RFC 3339 time of discovery, '' if configured/known
    version     INTEGER NOT NULL DEFAULT 0, -- bumped in the transaction that changes the board's items
    changed     TEXT NOT NULL DEFAULT ''    -- RFC 3339 time of the last change
);

-- Posts, keyed by (board, ntt_seq_no). Times are RFC 3339 strings with offset.
CREATE TABLE items (
    board       TEXT NOT NULL REFERENCES boards(slug),
    ntt_seq_no  INTEGER NOT NULL,
    title       TEXT NOT NULL,
    url         TEXT NOT NULL,
    published   TEXT NOT NULL,
    first_seen  TEXT NOT NULL,
    updated     TEXT NOT NULL,
    department  TEXT NOT NULL DEFAULT '',
    body        TEXT NOT NULL DEFAULT '',
    summary     TEXT NOT NULL DEFAULT '',
    thumbnail   TEXT NOT NULL DEFAULT '',
    hash        TEXT NOT NULL,
    list_hash   TEXT NOT NULL DEFAULT '',   -- hash of the list row, to notice edits without fetching details
    PRIMARY KEY (board, ntt_seq_no)
);
CREATE INDEX items_board_published ON items(board, published DESC, ntt_seq_no DESC);
CREATE INDEX items_published ON items(published DESC, ntt_seq_no DESC);
CREATE INDEX items_first_seen ON items(first_seen);

CREATE TABLE attachments (
    board       TEXT NOT NULL,
    ntt_seq_no  INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    url         TEXT NOT NULL,
    type        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (board, ntt_seq_no, position),
    FOREIGN KEY (board, ntt_seq_no) REFERENCES items(board, ntt_seq_no) ON DELETE CASCADE
);

CREATE TABLE crawl_runs (
    id          INTEGER PRIMARY KEY,
    board       TEXT NOT NULL,
    started     TEXT NOT NULL,
    finished    TEXT NOT NULL DEFAULT '',
    pages       INTEGER NOT NULL DEFAULT 0,
    requests    INTEGER NOT NULL DEFAULT 0,
    new_items   INTEGER NOT NULL DEFAULT 0,
    updated_items INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX crawl_runs_board ON crawl_runs(board, id DESC);

-- Small key/value settings, e.g. the generated token secret.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Named locks held by one process at a time (digest send, scheduler).
CREATE TABLE locks (
    name     TEXT PRIMARY KEY,
    owner    TEXT NOT NULL,   -- "host:pid:random"
    acquired TEXT NOT NULL,
    expires  TEXT NOT NULL    -- a holder that died is replaced after this time
);
