-- Organizations: the unit every role, API account and mirrored device belongs to.
CREATE TABLE organizations (
    id         UUID PRIMARY KEY,
    slug       TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT organizations_slug_key UNIQUE (slug)
);
