-- Each mirrored device's AppleCare state, for the device list's filter: `covered` when the
-- coverage Apple last reported has an active, uncanceled item, `not_covered` when it has
-- none, NULL while Orchard has never asked Apple (coverage is fetched one device at a time,
-- when someone opens it; see 0009). Written with `device_coverage`, never by the sync, whose
-- upsert names its columns and so keeps it.
ALTER TABLE mirror_devices ADD COLUMN applecare TEXT
    CHECK (applecare IN ('covered', 'not_covered'));
UPDATE mirror_devices SET applecare = (
    SELECT CASE WHEN EXISTS (
               SELECT 1 FROM json_each(c.facts, '$.coverage') AS item
               WHERE json_extract(item.value, '$.status') = 'ACTIVE'
                 AND COALESCE(json_extract(item.value, '$.canceled'), 0) = 0)
           THEN 'covered' ELSE 'not_covered' END
    FROM device_coverage AS c
    WHERE c.org_id = mirror_devices.org_id AND c.serial = mirror_devices.serial
      AND json_valid(c.facts))
WHERE EXISTS (
    SELECT 1 FROM device_coverage AS c
    WHERE c.org_id = mirror_devices.org_id AND c.serial = mirror_devices.serial
      AND json_valid(c.facts));
-- Few devices have a state (those someone opened): `applecare = ?` reads only them.
CREATE INDEX mirror_devices_applecare_idx ON mirror_devices (org_id, applecare, serial)
    WHERE applecare IS NOT NULL;
