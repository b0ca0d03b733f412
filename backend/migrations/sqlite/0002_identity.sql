-- Identity: Orchard users, their roles per organization, second factors, sessions,
-- sign-in throttling and the one-time setup link. Timestamps here are INTEGER Unix
-- seconds (UTC) so that expiry and window comparisons are plain integer comparisons.
CREATE TABLE users (
    id                 TEXT PRIMARY KEY NOT NULL,       -- UUID, text form
    username           TEXT NOT NULL,                   -- as typed at creation
    username_key       TEXT NOT NULL,                   -- lower-cased, for case-insensitive uniqueness
    display_name       TEXT NOT NULL,
    email              TEXT,
    password_hash      TEXT,                            -- Argon2id PHC string; NULL for SSO-only users
    instance_admin     INTEGER NOT NULL DEFAULT 0 CHECK (instance_admin IN (0, 1)),
    disabled           INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    totp_secret        BLOB,                            -- sealed by the vault; never plaintext
    totp_nonce         BLOB,
    totp_enabled       INTEGER NOT NULL DEFAULT 0 CHECK (totp_enabled IN (0, 1)),
    totp_last_step     INTEGER,                         -- last accepted 30 s step, against replay
    oidc_issuer        TEXT,
    oidc_subject       TEXT,
    created_at         INTEGER NOT NULL,
    last_login_at      INTEGER,
    CONSTRAINT users_username_key UNIQUE (username_key),
    CONSTRAINT users_oidc_key UNIQUE (oidc_issuer, oidc_subject),
    CONSTRAINT users_oidc_pair CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL))
) STRICT;

-- Single-use recovery codes, stored as SHA-256 of the code (codes carry 80 random bits).
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    used_at    INTEGER,
    CONSTRAINT recovery_codes_key PRIMARY KEY (user_id, code_hash)
) STRICT;

CREATE TABLE memberships (
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id   TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'helpdesk', 'viewer')),
    CONSTRAINT memberships_key PRIMARY KEY (user_id, org_id)
) STRICT;
CREATE INDEX memberships_org ON memberships (org_id);

-- tower-sessions records; data is the serialized session map.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY NOT NULL,
    data         BLOB NOT NULL,
    expiry_date  INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expiry ON sessions (expiry_date);

-- Sign-in attempts per throttle key (`account:<name>` or `addr:<ip>`), pruned after their window.
CREATE TABLE login_attempts (
    throttle_key  TEXT NOT NULL,
    attempted_at  INTEGER NOT NULL,
    failed        INTEGER NOT NULL CHECK (failed IN (0, 1))
) STRICT;
CREATE INDEX login_attempts_key_time ON login_attempts (throttle_key, attempted_at);

-- One-time first-run setup links; only the SHA-256 of the token is kept.
CREATE TABLE setup_tokens (
    token_hash  BLOB PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;

-- At most one row: inserting it is what makes a setup redemption win.
CREATE TABLE setup_completed (
    id            INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    user_id       TEXT NOT NULL REFERENCES users (id),
    completed_at  INTEGER NOT NULL
) STRICT;
