-- Apple API accounts (private keys sealed by the vault), the vault's key-check value,
-- and Orchard's hash-chained audit log.
CREATE TABLE api_accounts (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    kind                   TEXT NOT NULL CHECK (kind IN ('business', 'school')),
    client_id              TEXT NOT NULL,
    key_id                 TEXT NOT NULL,
    api_base_url           TEXT NOT NULL,
    token_url              TEXT NOT NULL,
    audience               TEXT NOT NULL,
    private_key_nonce      BYTEA NOT NULL,                -- 12 bytes
    private_key_ciphertext BYTEA NOT NULL,                -- AES-256-GCM, tag included
    key_fingerprint        TEXT NOT NULL,                 -- SHA-256 of the SPKI, hex
    created_at             TIMESTAMPTZ NOT NULL,
    rotated_at             TIMESTAMPTZ,
    revoked_at             TIMESTAMPTZ,
    last_token_at          TIMESTAMPTZ,
    last_success_at        TIMESTAMPTZ,
    last_error             TEXT,
    rate_limited_count     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_accounts_org_idx ON api_accounts (org_id, name);

CREATE TABLE vault_meta (
    name       TEXT PRIMARY KEY,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL
);

CREATE TABLE audit_log (
    seq         BIGINT PRIMARY KEY,                       -- 1, 2, 3, ... no gaps
    at          TIMESTAMPTZ NOT NULL,                     -- microsecond precision
    actor       TEXT NOT NULL,                            -- user id or 'system'
    client_addr TEXT,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    details     TEXT NOT NULL,                            -- JSON text, hashed as stored
    hash        TEXT NOT NULL                             -- SHA-256(prev hash || entry), hex
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);
