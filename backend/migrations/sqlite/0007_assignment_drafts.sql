-- Bulk-assignment wizard drafts: one person's choices between the wizard's steps (the
-- devices as given, the CSV column, the action), so each step is a plain page that works
-- without JavaScript and survives reloads. Only their creator reads them; they expire a day
-- after their last change. Times are Unix seconds.

CREATE TABLE assignment_drafts (
    id          TEXT PRIMARY KEY NOT NULL,              -- UUID, text form
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_by  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    source      TEXT NOT NULL,                          -- paste | csv | selection | filter
    label       TEXT NOT NULL,                          -- where the devices came from, for people
    input       TEXT NOT NULL,                          -- as given (serials, or the CSV file)
    csv_column  INTEGER,                                -- chosen CSV column (1-based); NULL = detected
    action      TEXT                                    -- JSON of the chosen JobAction; NULL before step 2
) STRICT;
CREATE INDEX assignment_drafts_owner_idx ON assignment_drafts (created_by, id);
CREATE INDEX assignment_drafts_expiry_idx ON assignment_drafts (expires_at);
