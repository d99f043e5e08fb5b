-- A subscriber's keyword filter (mailer, issue 14): a Go regular
-- expression matched against each post's title and summary, the matcher
-- of the feeds' ?filter= (feeds.NewKeywordFilter); '' takes every post of
-- the subscriber's boards. A delivery keeps the pattern it was made with,
-- as it keeps the boards, so a digest resumed after a crash selects the
-- same posts.
ALTER TABLE subscribers ADD COLUMN match_pattern TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN match_pattern TEXT NOT NULL DEFAULT '';
