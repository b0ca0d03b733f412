-- The device mirror: what Apple returned for each organization's devices and device
-- management services, and the state of each sync run so a restart resumes where it stopped.
-- Apple's dates and Orchard's sync times are Unix seconds (INTEGER), the same on both
-- databases, so date filters and keyset cursors compare numbers.

CREATE TABLE mirror_devices (
    org_id               TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    serial               TEXT NOT NULL,                -- Apple's id: the serial number
    account_id           TEXT NOT NULL,                -- the API account that last returned it
    model                TEXT,                         -- deviceModel, e.g. 'iMac 21.5"'
    product_family       TEXT,
    product_type         TEXT,
    capacity             TEXT,
    part_number          TEXT,
    order_number         TEXT,
    color                TEXT,
    status               TEXT,                         -- ASSIGNED | UNASSIGNED, as Apple says
    service_id           TEXT,                         -- from the services' device lists
    purchase_source_id   TEXT,
    purchase_source_type TEXT,
    imei                 TEXT,                         -- space-separated when several
    meid                 TEXT,
    eid                  TEXT,
    wifi_mac             TEXT,
    bluetooth_mac        TEXT,
    ethernet_mac         TEXT,
    migration_capable    INTEGER,                      -- 0 / 1 / NULL
    migration_status     TEXT,
    added_at             INTEGER,                      -- addedToOrgDateTime
    ordered_at           INTEGER,                      -- orderDateTime
    apple_updated_at     INTEGER,                      -- updatedDateTime
    migration_deadline   INTEGER,
    content_hash         INTEGER NOT NULL,             -- of Apple's attributes; equal = unchanged
    first_seen_at        INTEGER NOT NULL,
    changed_at           INTEGER NOT NULL,             -- last time Orchard wrote the attributes
    absent_since         INTEGER,                      -- Apple stopped returning it (released)
    PRIMARY KEY (org_id, serial)
) STRICT, WITHOUT ROWID;
CREATE INDEX mirror_devices_service_idx ON mirror_devices (org_id, service_id, serial);
CREATE INDEX mirror_devices_account_idx ON mirror_devices (account_id, serial);
-- (Device search pages by serial through the primary key; PostgreSQL adds a bytewise index.)

CREATE TABLE mirror_services (
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,                       -- Apple's mdmServers id
    account_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    server_type   TEXT,                                -- MDM | APPLE_CONFIGURATOR | ...
    default_families TEXT,                             -- space-separated, as Apple spells them
    created_at    INTEGER,
    updated_at    INTEGER,
    content_hash  INTEGER NOT NULL,
    absent_since  INTEGER,
    PRIMARY KEY (org_id, id)
) STRICT, WITHOUT ROWID;

-- One row per run; at most one unfinished run per account.
CREATE TABLE sync_runs (
    id             INTEGER PRIMARY KEY NOT NULL,
    account_id     TEXT NOT NULL REFERENCES api_accounts (id) ON DELETE CASCADE,
    org_id         TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    cause          TEXT NOT NULL,                      -- schedule | manual | start
    state          TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    phase          TEXT NOT NULL,                      -- devices | services | finishing
    cursor         TEXT,                               -- next page of the current list
    service_index  INTEGER NOT NULL DEFAULT 0,         -- services phase: which service
    pages          INTEGER NOT NULL DEFAULT 0,
    items          INTEGER NOT NULL DEFAULT 0,
    written        INTEGER NOT NULL DEFAULT 0,         -- device rows inserted or changed
    released       INTEGER NOT NULL DEFAULT 0,         -- devices newly marked absent
    rate_limited   INTEGER NOT NULL DEFAULT 0,         -- 429s answered during the run
    budget_wait_ms INTEGER NOT NULL DEFAULT 0,
    started_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    finished_at    INTEGER,
    error          TEXT
) STRICT;
CREATE INDEX sync_runs_account_idx ON sync_runs (account_id, id);
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (account_id) WHERE state = 'running';

-- The serial numbers of each page a running sync has stored, so the run can tell at its end
-- which devices Apple no longer returns and which service each device belongs to, even
-- across a restart. Deleted when the run finishes.
CREATE TABLE sync_run_pages (
    run_id     INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    service_id TEXT,                                   -- NULL: an orgDevices page
    serials    TEXT NOT NULL,                          -- newline-separated
    PRIMARY KEY (run_id, seq)
) STRICT;

-- Who holds the sync of an account (one sync per account across all instances).
CREATE TABLE sync_leases (
    account_id  TEXT PRIMARY KEY NOT NULL REFERENCES api_accounts (id) ON DELETE CASCADE,
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
