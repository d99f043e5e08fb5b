-- WebSub (internal/websub): the hub's subscriptions to msitfeed's feeds,
-- and the board versions it has published.
--
-- A subscription is one (topic, callback) pair: topic is the feed's
-- canonical URL, board and format say which feed it is and feed_limit its
-- ?limit= (0: the default). Times are UTC RFC 3339 strings of whole seconds
-- (2006-01-02T15:04:05Z), so they compare as text; a subscription whose
-- expires has passed gets nothing and is deleted by the hub's next sweep.
CREATE TABLE websub_subscriptions (
    id            INTEGER PRIMARY KEY,
    topic         TEXT NOT NULL,
    callback      TEXT NOT NULL,
    callback_host TEXT NOT NULL,            -- lower-case host name, for the per-host cap
    board         TEXT NOT NULL,            -- a board slug or 'all'
    format        TEXT NOT NULL,            -- rss, atom or json
    feed_limit    INTEGER NOT NULL DEFAULT 0,
    secret        TEXT NOT NULL DEFAULT '', -- hub.secret; '' signs nothing
    lease_seconds INTEGER NOT NULL,
    created       TEXT NOT NULL,
    verified      TEXT NOT NULL,            -- the last verification of intent, where the lease starts
    expires       TEXT NOT NULL,
    last_delivery TEXT NOT NULL DEFAULT '', -- the last content distribution attempt
    last_status   INTEGER NOT NULL DEFAULT 0, -- its HTTP status; 0 when no response came
    last_error    TEXT NOT NULL DEFAULT '', -- why it failed, '' when it did not
    deliveries    INTEGER NOT NULL DEFAULT 0, -- successful content distributions
    failures      INTEGER NOT NULL DEFAULT 0, -- failed attempts
    UNIQUE (topic, callback)
);
CREATE INDEX websub_subscriptions_board ON websub_subscriptions(board, expires);
CREATE INDEX websub_subscriptions_host ON websub_subscriptions(callback_host, expires);
CREATE INDEX websub_subscriptions_expires ON websub_subscriptions(expires);

-- The boards.version of each board whose change the hub last published,
-- so that a change made while no hub ran (msitfeed crawl with serve
-- stopped) is published when serve starts.
CREATE TABLE websub_published (
    board   TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
