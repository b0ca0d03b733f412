-- Bulk-assignment jobs: each job, its chunks (one Apple activity each) and one row per serial
-- number with its outcome. A job is written whole, in one transaction, before anything is
-- sent; every step of a chunk is persisted before and after its request to Apple, so a
-- restart resumes, or reconciles a chunk caught mid-request, without sending it twice.
-- Human-facing times are Unix seconds; the runner's schedule columns (`*_ms`) are Unix
-- milliseconds.

CREATE TABLE jobs (
    id            BIGSERIAL PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    account_id    UUID NOT NULL REFERENCES api_accounts (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,                       -- JobAction::kind, for lists and filters
    action        TEXT NOT NULL,                       -- JobAction as JSON
    created_by    UUID,                                -- user id; NULL = Orchard itself
    created_at    BIGINT NOT NULL,
    confirmed_by  UUID,
    confirmed_at  BIGINT,                             -- NULL: not confirmed, never run
    status        TEXT NOT NULL CHECK (status IN ('planned', 'running', 'waiting', 'cancelling',
                      'cancelled', 'completed', 'completed_with_failures', 'failed')),
    retry_of      BIGINT REFERENCES jobs (id) ON DELETE SET NULL,
    chunk_size    BIGINT NOT NULL,
    chunks        BIGINT NOT NULL,
    devices       BIGINT NOT NULL,                    -- items, sent or skipped
    pending       BIGINT NOT NULL,                    -- outcome counters, kept with the items
    succeeded     BIGINT NOT NULL DEFAULT 0,
    failed        BIGINT NOT NULL DEFAULT 0,
    skipped       BIGINT NOT NULL DEFAULT 0,
    waiting_until_ms BIGINT,                          -- status waiting: next POST slot
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX jobs_org_idx ON jobs (org_id, id);
CREATE INDEX jobs_open_idx ON jobs (status) WHERE status IN ('planned', 'running', 'waiting', 'cancelling');

CREATE TABLE job_chunks (
    job_id        BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx           BIGINT NOT NULL,                    -- 0, 1, 2, ... in sending order
    devices       BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('planned', 'sending', 'submitted', 'completed',
                      'failed', 'cancelled')),
    attempts      BIGINT NOT NULL DEFAULT 0,          -- POSTs that may have reached Apple
    rate_limited  BIGINT NOT NULL DEFAULT 0,          -- 429s answered to its POSTs (not sent)
    activity_id   TEXT,                                -- Apple's, once submitted
    sending_at_ms BIGINT,                             -- when the last POST was started
    submitted_at  BIGINT,
    not_before_ms BIGINT,                             -- planned: wait (Retry-After, backoff)
    next_at_ms    BIGINT,                             -- submitted: next poll; sending: reconcile
    polls         BIGINT NOT NULL DEFAULT 0,
    apple_status  TEXT,                                -- last status / subStatus Apple reported
    apple_sub_status TEXT,
    verify_at_ms  BIGINT,                             -- completed: check the assignment then
    verify_tries  BIGINT NOT NULL DEFAULT 0,
    finished_at   BIGINT,
    note          TEXT,                                -- last error, failure or reconciliation
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX job_chunks_state_idx ON job_chunks (job_id, state);

CREATE TABLE job_items (
    job_id        BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    serial        TEXT NOT NULL,
    chunk_idx     BIGINT,                             -- NULL: skipped before sending
    outcome       TEXT NOT NULL CHECK (outcome IN ('pending', 'succeeded', 'failed', 'skipped')),
    reason        TEXT,                                -- Apple's words, or Orchard's
    verified      BOOLEAN NOT NULL DEFAULT FALSE,         -- assignment seen through the linkage
    activity_id   TEXT,                                -- the activity that decided it, if known
    PRIMARY KEY (job_id, serial)
);
-- Items page by serial bytewise (as SQLite does), whatever the database's locale.
CREATE INDEX job_items_serial_c_idx ON job_items (job_id, serial COLLATE "C");
CREATE INDEX job_items_chunk_idx ON job_items (job_id, chunk_idx, serial COLLATE "C");
CREATE INDEX job_items_outcome_idx ON job_items (job_id, outcome, serial COLLATE "C");

-- Leases are session advisory locks on PostgreSQL (see store/leases.rs); the sync's lease
-- table never existed here.
