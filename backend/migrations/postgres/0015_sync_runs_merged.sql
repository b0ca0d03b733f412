-- Kept in step with SQLite's 0015, where a run's staged rows count here once they are in
-- the mirror. PostgreSQL never stages, so it stays 0; the column keeps the SQL that reads
-- the runs the same on both databases.
ALTER TABLE sync_runs ADD COLUMN merged BIGINT NOT NULL DEFAULT 0;
