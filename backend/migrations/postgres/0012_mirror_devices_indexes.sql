-- Fewer and cheaper indexes on mirrored devices (as SQLite's 0012). Apple returns devices in
-- an order unrelated to their serials, so every index keyed by serial takes a page of new
-- devices as 1000 scattered insertions; there were four.
-- * The serial is compared bytewise everywhere (search orders and pages by it as SQLite
--   does), so the column itself takes the "C" collation: the primary key then serves both
--   the upsert and the search's order, and the separate bytewise index goes.
-- * The account index needs no serial: it lists an account's devices whole.
-- * The service index holds assigned devices only (`service_id = $n` still uses it); the
--   device phase, which does not know services, inserts nothing into it.
DROP INDEX mirror_devices_serial_c_idx;
DROP INDEX mirror_devices_service_idx;
DROP INDEX mirror_devices_account_idx;
ALTER TABLE mirror_devices ALTER COLUMN serial TYPE TEXT COLLATE "C";
CREATE INDEX mirror_devices_account_idx ON mirror_devices (account_id);
CREATE INDEX mirror_devices_service_idx ON mirror_devices (org_id, service_id, serial)
    WHERE service_id IS NOT NULL;
