-- Bulk-assignment jobs: each job, its chunks (one Apple activity each) and one row per serial
-- number with its outcome. A job is written whole, in one transaction, before anything is
-- sent; every step of a chunk is persisted before and after its request to Apple, so a
-- restart resumes, or reconciles a chunk caught mid-request, without sending it twice.
-- Human-facing times are Unix seconds; the runner's schedule columns (`*_ms`) are Unix
-- milliseconds.

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY NOT NULL,
    org_id        TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL REFERENCES api_accounts (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,                       -- JobAction::kind, for lists and filters
    action        TEXT NOT NULL,                       -- JobAction as JSON
    created_by    TEXT,                                -- user id; NULL = Orchard itself
    created_at    INTEGER NOT NULL,
    confirmed_by  TEXT,
    confirmed_at  INTEGER,                             -- NULL: not confirmed, never run
    status        TEXT NOT NULL CHECK (status IN ('planned', 'running', 'waiting', 'cancelling',
                      'cancelled', 'completed', 'completed_with_failures', 'failed')),
    retry_of      INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    chunk_size    INTEGER NOT NULL,
    chunks        INTEGER NOT NULL,
    devices       INTEGER NOT NULL,                    -- items, sent or skipped
    pending       INTEGER NOT NULL,                    -- outcome counters, kept with the items
    succeeded     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    skipped       INTEGER NOT NULL DEFAULT 0,
    waiting_until_ms INTEGER,                          -- status waiting: next POST slot
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER
) STRICT;
CREATE INDEX jobs_org_idx ON jobs (org_id, id);
CREATE INDEX jobs_open_idx ON jobs (status) WHERE status IN ('planned', 'running', 'waiting', 'cancelling');

CREATE TABLE job_chunks (
    job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL,                    -- 0, 1, 2, ... in sending order
    devices       INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('planned', 'sending', 'submitted', 'completed',
                      'failed', 'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,          -- POSTs that may have reached Apple
    rate_limited  INTEGER NOT NULL DEFAULT 0,          -- 429s answered to its POSTs (not sent)
    activity_id   TEXT,                                -- Apple's, once submitted
    sending_at_ms INTEGER,                             -- when the last POST was started
    submitted_at  INTEGER,
    not_before_ms INTEGER,                             -- planned: wait (Retry-After, backoff)
    next_at_ms    INTEGER,                             -- submitted: next poll; sending: reconcile
    polls         INTEGER NOT NULL DEFAULT 0,
    apple_status  TEXT,                                -- last status / subStatus Apple reported
    apple_sub_status TEXT,
    verify_at_ms  INTEGER,                             -- completed: check the assignment then
    verify_tries  INTEGER NOT NULL DEFAULT 0,
    finished_at   INTEGER,
    note          TEXT,                                -- last error, failure or reconciliation
    PRIMARY KEY (job_id, idx)
) STRICT;
CREATE INDEX job_chunks_state_idx ON job_chunks (job_id, state);

CREATE TABLE job_items (
    job_id        INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    serial        TEXT NOT NULL,
    chunk_idx     INTEGER,                             -- NULL: skipped before sending
    outcome       TEXT NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed', 'skipped')),
    reason        TEXT,                                -- Apple's words, or Orchard's
    verified      INTEGER NOT NULL DEFAULT 0,          -- assignment seen through the linkage
    activity_id   TEXT,                                -- the activity that decided it, if known
    PRIMARY KEY (job_id, serial)
) STRICT, WITHOUT ROWID;
CREATE INDEX job_items_chunk_idx ON job_items (job_id, chunk_idx, serial);
CREATE INDEX job_items_outcome_idx ON job_items (job_id, outcome, serial);

-- One holder per piece of background work across instances (a sync, a job run), renewed by
-- the holder and expiring when its process dies. Replaces the sync-only lease table.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,             -- sync:<account id> | job:<job id>
    holder      TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
DROP TABLE sync_leases;
