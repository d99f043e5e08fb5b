-- The slot a job last ran for (its scheduled time, UTC, fixed width so it
-- compares as text) and the instance that ran it. A run is claimed by
-- moving last_slot forward, so no slot runs twice across instances.
ALTER TABLE jobs ADD COLUMN last_slot TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN last_owner TEXT NOT NULL DEFAULT '';
