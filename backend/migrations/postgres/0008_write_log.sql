-- The POSTs each API account sent to Apple in the last hour or so, kept so the write budget
-- (Apple allows about ten an hour) holds across restarts and instances: a process that
-- starts, or a second instance, counts what was already sent instead of starting with a full
-- budget. A row is written just before its POST (a crash in between over-counts, never
-- under-counts) and pruned once it is older than the budget's window. Times are Unix
-- milliseconds.

CREATE TABLE api_writes (
    account_id  UUID NOT NULL REFERENCES api_accounts (id) ON DELETE CASCADE,
    sent_at_ms  BIGINT NOT NULL
);
CREATE INDEX api_writes_idx ON api_writes (account_id, sent_at_ms);
