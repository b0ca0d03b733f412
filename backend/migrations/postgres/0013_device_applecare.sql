-- Each mirrored device's AppleCare state, for the device list's filter (as SQLite's 0013):
-- `covered` when the coverage Apple last reported has an active, uncanceled item,
-- `not_covered` when it has none, NULL while Orchard has never asked Apple. Written with
-- `device_coverage`, never by the sync, whose upsert names its columns and so keeps it.
ALTER TABLE mirror_devices ADD COLUMN applecare TEXT
    CHECK (applecare IN ('covered', 'not_covered'));
UPDATE mirror_devices AS d SET applecare =
    CASE WHEN EXISTS (
             SELECT 1 FROM jsonb_array_elements(c.facts::jsonb -> 'coverage') AS item
             WHERE item ->> 'status' = 'ACTIVE'
               AND COALESCE((item ->> 'canceled')::boolean, false) = false)
         THEN 'covered' ELSE 'not_covered' END
FROM device_coverage AS c
WHERE c.org_id = d.org_id AND c.serial = d.serial;
-- Few devices have a state (those someone opened): `applecare = $n` reads only them.
CREATE INDEX mirror_devices_applecare_idx ON mirror_devices (org_id, applecare, serial)
    WHERE applecare IS NOT NULL;
