-- PostgreSQL twin of sqlite/0008_match.sql.
ALTER TABLE subscribers ADD COLUMN match_pattern TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN match_pattern TEXT NOT NULL DEFAULT '';
