-- The device mirror: what Apple returned for each organization's devices and device
-- management services, and the state of each sync run so a restart resumes where it stopped.
-- Apple's dates and Orchard's sync times are Unix seconds (BIGINT), the same on both
-- databases, so date filters and keyset cursors compare numbers.

CREATE TABLE mirror_devices (
    org_id               UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    serial               TEXT NOT NULL,                -- Apple's id: the serial number
    account_id           UUID NOT NULL,                -- the API account that last returned it
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
    migration_capable    BOOLEAN,                     -- NULL: unknown
    migration_status     TEXT,
    added_at             BIGINT,                      -- addedToOrgDateTime
    ordered_at           BIGINT,                      -- orderDateTime
    apple_updated_at     BIGINT,                      -- updatedDateTime
    migration_deadline   BIGINT,
    content_hash         BIGINT NOT NULL,             -- of Apple's attributes; equal = unchanged
    first_seen_at        BIGINT NOT NULL,
    changed_at           BIGINT NOT NULL,             -- last time Orchard wrote the attributes
    absent_since         BIGINT,                      -- Apple stopped returning it (released)
    PRIMARY KEY (org_id, serial)
);
CREATE INDEX mirror_devices_service_idx ON mirror_devices (org_id, service_id, serial);
CREATE INDEX mirror_devices_account_idx ON mirror_devices (account_id, serial);
-- Device search orders and pages by serial bytewise (as SQLite does), whatever the locale.
CREATE INDEX mirror_devices_serial_c_idx ON mirror_devices (org_id, serial COLLATE "C");

CREATE TABLE mirror_services (
    org_id        UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,                       -- Apple's mdmServers id
    account_id    UUID NOT NULL,
    name          TEXT NOT NULL,
    server_type   TEXT,                                -- MDM | APPLE_CONFIGURATOR | ...
    default_families TEXT,                             -- space-separated, as Apple spells them
    created_at    BIGINT,
    updated_at    BIGINT,
    content_hash  BIGINT NOT NULL,
    absent_since  BIGINT,
    PRIMARY KEY (org_id, id)
);

-- One row per run; at most one unfinished run per account.
CREATE TABLE sync_runs (
    id             BIGSERIAL PRIMARY KEY,
    account_id     UUID NOT NULL REFERENCES api_accounts (id) ON DELETE CASCADE,
    org_id         UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    cause          TEXT NOT NULL,                      -- schedule | manual | start
    state          TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    phase          TEXT NOT NULL,                      -- devices | services | finishing
    cursor         TEXT,                               -- next page of the current list
    service_index  BIGINT NOT NULL DEFAULT 0,         -- services phase: which service
    pages          BIGINT NOT NULL DEFAULT 0,
    items          BIGINT NOT NULL DEFAULT 0,
    written        BIGINT NOT NULL DEFAULT 0,         -- device rows inserted or changed
    released       BIGINT NOT NULL DEFAULT 0,         -- devices newly marked absent
    rate_limited   BIGINT NOT NULL DEFAULT 0,         -- 429s answered during the run
    budget_wait_ms BIGINT NOT NULL DEFAULT 0,
    started_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    finished_at    BIGINT,
    error          TEXT
);
CREATE INDEX sync_runs_account_idx ON sync_runs (account_id, id);
CREATE UNIQUE INDEX sync_runs_one_running ON sync_runs (account_id) WHERE state = 'running';

-- The serial numbers of each page a running sync has stored, so the run can tell at its end
-- which devices Apple no longer returns and which service each device belongs to, even
-- across a restart. Deleted when the run finishes. (One sync per account across instances is
-- a session advisory lock here; SQLite keeps a lease table instead.)
CREATE TABLE sync_run_pages (
    run_id     BIGINT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    service_id TEXT,                                   -- NULL: an orgDevices page
    serials    TEXT NOT NULL,                          -- newline-separated
    PRIMARY KEY (run_id, seq)
);
