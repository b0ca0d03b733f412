-- Rows a run staged (0014) and then moved into the mirror. Staged rows are counted in
-- `written` when staged, before they are visible; other instances' search indexes compare a
-- run's counters with what they have read (`backend::mirror::index`), so the move has to
-- show as well.
ALTER TABLE sync_runs ADD COLUMN merged INTEGER NOT NULL DEFAULT 0;
