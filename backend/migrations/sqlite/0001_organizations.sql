-- Organizations: the unit every role, API account and mirrored device belongs to.
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY NOT NULL,          -- UUID, text form
    slug       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,                      -- RFC 3339, UTC
    CONSTRAINT organizations_slug_key UNIQUE (slug)
) STRICT;
