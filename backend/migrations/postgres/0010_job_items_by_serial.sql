-- A device's history in Orchard: the jobs that included a serial number, newest first
-- (device detail page).
CREATE INDEX job_items_serial_idx ON job_items (serial, job_id);
