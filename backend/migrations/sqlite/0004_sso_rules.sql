-- Single sign-on group → role rules that administrators manage in Settings. Rules in the
-- configuration file ([[oidc.role_map]]) apply as well; the highest role per organization wins.
CREATE TABLE sso_role_rules (
    group_name  TEXT NOT NULL,                           -- exactly as in the groups claim
    org_id      TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'helpdesk', 'viewer')),
    created_at  INTEGER NOT NULL,                        -- Unix seconds, UTC
    CONSTRAINT sso_role_rules_key PRIMARY KEY (group_name, org_id)
) STRICT;
