-- The rest of the organization as Apple lists it, mirrored by the same sync runs as the
-- devices: users, user groups, organizational units, apps, packages, configurations and
-- Blueprints (`mirror_objects`), who belongs to which group, unit and Blueprint
-- (`mirror_members`), and Apple's audit events (`mirror_audit_events`).
-- Dates are Unix seconds, as in 0005.

-- One object of one of Apple's lists. `attributes` is the JSON object Apple sent, every
-- member kept (new ones included), so pages can show what Apple knows without a migration.
CREATE TABLE mirror_objects (
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,                  -- Apple's type: users, userGroups, ...
    id            TEXT NOT NULL,                  -- Apple's id
    account_id    TEXT NOT NULL,                  -- the API account that last returned it
    name          TEXT NOT NULL,                  -- display name (users: first and last)
    attributes    TEXT NOT NULL,                  -- Apple's attributes, JSON
    content_hash  INTEGER NOT NULL,               -- of `attributes`; equal = unchanged
    first_seen_at INTEGER NOT NULL,
    changed_at    INTEGER NOT NULL,
    absent_since  INTEGER,                        -- Apple stopped returning it
    PRIMARY KEY (org_id, kind, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX mirror_objects_account_idx ON mirror_objects (account_id, kind, id);

-- Membership: `member_id` (of type `rel`: users, orgDevices, apps, ...) belongs to the
-- object `owner_kind`/`owner_id` (a user group, an organizational unit or a Blueprint).
CREATE TABLE mirror_members (
    org_id     TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    owner_kind TEXT NOT NULL,
    owner_id   TEXT NOT NULL,
    rel        TEXT NOT NULL,
    member_id  TEXT NOT NULL,
    PRIMARY KEY (org_id, owner_kind, owner_id, rel, member_id)
) STRICT, WITHOUT ROWID;
-- "Which Blueprints hold this device?"
CREATE INDEX mirror_members_member_idx ON mirror_members (org_id, rel, member_id);

-- Apple's audit events. Immutable: stored once, by id.
CREATE TABLE mirror_audit_events (
    org_id       TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    occurred_at  INTEGER NOT NULL,                -- eventDateTime
    event_type   TEXT NOT NULL,                   -- e.g. DEVICE_ASSIGNED_TO_SERVER
    category     TEXT,
    actor_type   TEXT,
    actor_id     TEXT,
    actor_name   TEXT,
    subject_type TEXT,
    subject_id   TEXT,
    subject_name TEXT,
    outcome      TEXT,
    serial       TEXT,                            -- the device the event is about, if any
    data         TEXT,                            -- the event's data member, JSON
    PRIMARY KEY (org_id, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX mirror_audit_events_serial_idx
    ON mirror_audit_events (org_id, serial, occurred_at) WHERE serial IS NOT NULL;
CREATE INDEX mirror_audit_events_time_idx ON mirror_audit_events (org_id, occurred_at);

-- Up to when each account's audit events are mirrored (the next run asks from there).
CREATE TABLE mirror_audit_state (
    account_id   TEXT PRIMARY KEY NOT NULL REFERENCES api_accounts (id) ON DELETE CASCADE,
    synced_until INTEGER NOT NULL
) STRICT;

-- The ids of each page of a list a running sync has read, so the end of the list can tell
-- which objects (or members) Apple no longer returns, even across a restart. `list` is the
-- object kind, or `owner_kind/owner_id/rel` for a membership list. Deleted when the list ends.
CREATE TABLE sync_run_ids (
    run_id INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    list   TEXT NOT NULL,
    ids    TEXT NOT NULL,                         -- newline-separated
    PRIMARY KEY (run_id, seq)
) STRICT;

-- When a run finished the devices (phase `finishing`): the device mirror's freshness, even
-- while the run goes on with the directory.
ALTER TABLE sync_runs ADD COLUMN devices_synced_at INTEGER;
