-- Identity: Orchard users, their roles per organization, second factors, sessions,
-- sign-in throttling and the one-time setup link.
CREATE TABLE users (
    id                 UUID PRIMARY KEY,
    username           TEXT NOT NULL,                   -- as typed at creation
    username_key       TEXT NOT NULL,                   -- lower-cased, for case-insensitive uniqueness
    display_name       TEXT NOT NULL,
    email              TEXT,
    password_hash      TEXT,                            -- Argon2id PHC string; NULL for SSO-only users
    instance_admin     BOOLEAN NOT NULL DEFAULT FALSE,
    disabled           BOOLEAN NOT NULL DEFAULT FALSE,
    totp_secret        BYTEA,                           -- sealed by the vault; never plaintext
    totp_nonce         BYTEA,
    totp_enabled       BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step     BIGINT,                          -- last accepted 30 s step, against replay
    oidc_issuer        TEXT,
    oidc_subject       TEXT,
    created_at         TIMESTAMPTZ NOT NULL,
    last_login_at      TIMESTAMPTZ,
    CONSTRAINT users_username_key UNIQUE (username_key),
    CONSTRAINT users_oidc_key UNIQUE (oidc_issuer, oidc_subject),
    CONSTRAINT users_oidc_pair CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL))
);

-- Single-use recovery codes, stored as SHA-256 of the code (codes carry 80 random bits).
CREATE TABLE recovery_codes (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BYTEA NOT NULL,
    used_at    TIMESTAMPTZ,
    CONSTRAINT recovery_codes_key PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE memberships (
    user_id  UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id   UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'helpdesk', 'viewer')),
    CONSTRAINT memberships_key PRIMARY KEY (user_id, org_id)
);
CREATE INDEX memberships_org ON memberships (org_id);

-- tower-sessions records; data is the serialized session map.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    data         BYTEA NOT NULL,
    expiry_date  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expiry_date);

-- Sign-in attempts per throttle key (`account:<name>` or `addr:<ip>`), pruned after their window.
CREATE TABLE login_attempts (
    throttle_key  TEXT NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL,
    failed        BOOLEAN NOT NULL
);
CREATE INDEX login_attempts_key_time ON login_attempts (throttle_key, attempted_at);

-- One-time first-run setup links; only the SHA-256 of the token is kept.
CREATE TABLE setup_tokens (
    token_hash  BYTEA PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);

-- At most one row: inserting it is what makes a setup redemption win.
CREATE TABLE setup_completed (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    user_id       UUID NOT NULL REFERENCES users (id),
    completed_at  TIMESTAMPTZ NOT NULL
);
