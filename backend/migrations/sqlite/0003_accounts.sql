-- Apple API accounts (private keys sealed by the vault), the vault's key-check value,
-- and Orchard's hash-chained audit log.
CREATE TABLE api_accounts (
    id                     TEXT PRIMARY KEY NOT NULL,     -- UUID, text form
    org_id                 TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    kind                   TEXT NOT NULL CHECK (kind IN ('business', 'school')),
    client_id              TEXT NOT NULL,
    key_id                 TEXT NOT NULL,
    api_base_url           TEXT NOT NULL,
    token_url              TEXT NOT NULL,
    audience               TEXT NOT NULL,
    private_key_nonce      BLOB NOT NULL,                 -- 12 bytes
    private_key_ciphertext BLOB NOT NULL,                 -- AES-256-GCM, tag included
    key_fingerprint        TEXT NOT NULL,                 -- SHA-256 of the SPKI, hex
    created_at             TEXT NOT NULL,                 -- RFC 3339, UTC
    rotated_at             TEXT,
    revoked_at             TEXT,
    last_token_at          TEXT,
    last_success_at        TEXT,
    last_error             TEXT,
    rate_limited_count     INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX api_accounts_org_idx ON api_accounts (org_id, name);

CREATE TABLE vault_meta (
    name       TEXT PRIMARY KEY NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL
) STRICT;

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY NOT NULL,             -- 1, 2, 3, ... no gaps
    at_us       INTEGER NOT NULL,                         -- Unix time, microseconds
    actor       TEXT NOT NULL,                            -- user id or 'system'
    client_addr TEXT,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL,                            -- JSON, hashed as stored
    hash        TEXT NOT NULL                             -- SHA-256(prev hash || entry), hex
) STRICT;
CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);
