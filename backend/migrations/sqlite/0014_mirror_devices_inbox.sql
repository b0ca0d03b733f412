-- A first sync's devices, staged before they join `mirror_devices`. Apple returns devices in
-- an order unrelated to their serials, and `mirror_devices` is clustered by serial (see
-- 0012), so a page of 1000 new devices stored directly lands on some 1000 different table
-- pages, each written whole to the log. Appended here, a page is a few pages of log; the
-- sync then moves the staged rows into the mirror sorted by serial, whenever they are as
-- many as the rows already moved and when the device list ends (and at the start of any
-- run, for a run that stopped in between), so each merge writes each table page about once.
-- Rows keep the column names and meaning of `mirror_devices`; `seq` orders a serial staged
-- twice (the last one wins). Only first syncs stage: later runs compare and write in place.
CREATE TABLE mirror_devices_inbox (
    seq                  INTEGER PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    serial               TEXT NOT NULL,
    account_id           TEXT NOT NULL,
    model                TEXT,
    product_family       TEXT,
    product_type         TEXT,
    capacity             TEXT,
    part_number          TEXT,
    order_number         TEXT,
    color                TEXT,
    status               TEXT,
    purchase_source_id   TEXT,
    purchase_source_type TEXT,
    imei                 TEXT,
    meid                 TEXT,
    eid                  TEXT,
    wifi_mac             TEXT,
    bluetooth_mac        TEXT,
    ethernet_mac         TEXT,
    migration_capable    INTEGER,
    migration_status     TEXT,
    added_at             INTEGER,
    ordered_at           INTEGER,
    apple_updated_at     INTEGER,
    migration_deadline   INTEGER,
    content_hash         INTEGER NOT NULL,
    first_seen_at        INTEGER NOT NULL,
    changed_at           INTEGER NOT NULL
) STRICT;
