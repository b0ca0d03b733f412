-- AppleCare coverage and Activation Lock of one device, as Apple last reported them. Apple
-- serves both one device per call (no bulk endpoint), so they are not synced: they are
-- fetched when someone opens the device and kept here for a while (`[mirror]
-- coverage_max_age_secs`). `facts` is Orchard's JSON of both; `fetched_at` Unix seconds.

CREATE TABLE device_coverage (
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    serial      TEXT NOT NULL,
    fetched_at  INTEGER NOT NULL,
    facts       TEXT NOT NULL,
    PRIMARY KEY (org_id, serial)
) STRICT, WITHOUT ROWID;
