-- PostgreSQL twin of sqlite/0010_job_slots.sql.
ALTER TABLE jobs ADD COLUMN last_slot TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN last_owner TEXT NOT NULL DEFAULT '';
