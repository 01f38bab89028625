-- keygate's whole current schema. Applied to an empty database at start; older
-- databases are migrated forward by src/db.rs, which also sets PRAGMA user_version
-- (SCHEMA_VERSION there: one past its last migration). Times are Unix milliseconds.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- The installation's administrators create accounts outright
    -- (user.createUserWithCredentials): the first user, and whom the shell names.
    installation_admin INTEGER NOT NULL DEFAULT 0,
    -- Set by the first correct code after two-factor/enable, cleared by disable.
    two_factor_enabled INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    owner_id   TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    -- A session of a member without two-factor may only enable it here.
    require_two_factor INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE members (
    id                      TEXT PRIMARY KEY,
    organization_id         TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role                    TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    can_create_projects     INTEGER NOT NULL DEFAULT 0,
    can_delete_projects     INTEGER NOT NULL DEFAULT 0,
    can_create_environments INTEGER NOT NULL DEFAULT 0,
    can_delete_environments INTEGER NOT NULL DEFAULT 0,
    can_create_services     INTEGER NOT NULL DEFAULT 0,
    can_delete_services     INTEGER NOT NULL DEFAULT 0,
    can_access_to_api       INTEGER NOT NULL DEFAULT 0,
    created_at              INTEGER NOT NULL,
    UNIQUE (organization_id, user_id)
) STRICT;
CREATE UNIQUE INDEX members_one_owner ON members (organization_id) WHERE role = 'owner';
CREATE INDEX members_user ON members (user_id);
-- Listings page through rows in the order they were inserted (rowid): each index below
-- hands out the rows of one equality in that order, so a page reads only its own rows.
CREATE INDEX members_org ON members (organization_id);

CREATE TABLE sessions (
    id                     TEXT PRIMARY KEY,
    token_hash             BLOB NOT NULL UNIQUE,
    user_id                TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    active_organization_id TEXT REFERENCES organizations(id) ON DELETE SET NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    expires_at             INTEGER NOT NULL,
    ip_address             TEXT,
    user_agent             TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE invitations (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email           TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_hash      BLOB NOT NULL UNIQUE,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'canceled')),
    inviter_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX invitations_org ON invitations (organization_id, status);
CREATE INDEX invitations_organization ON invitations (organization_id);

CREATE TABLE projects (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    description     TEXT,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX projects_org ON projects (organization_id, created_at DESC);

CREATE TABLE environments (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    description     TEXT,
    is_default      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    UNIQUE (project_id, name)
) STRICT;
CREATE INDEX environments_org ON environments (organization_id);

CREATE TABLE applications (
    id                 TEXT PRIMARY KEY,
    environment_id     TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    organization_id    TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    app_name           TEXT NOT NULL,
    description        TEXT,
    application_status TEXT NOT NULL DEFAULT 'idle',
    created_at         INTEGER NOT NULL,
    UNIQUE (organization_id, app_name)
) STRICT;
CREATE INDEX applications_env ON applications (environment_id);

-- A member's access lists; rows vanish with the member or the resource.
CREATE TABLE member_projects (
    member_id  TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    PRIMARY KEY (member_id, project_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE member_environments (
    member_id      TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    PRIMARY KEY (member_id, environment_id)
) STRICT, WITHOUT ROWID;
CREATE TABLE member_applications (
    member_id      TEXT NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    PRIMARY KEY (member_id, application_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE api_keys (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    prefix                 TEXT NOT NULL,
    start                  TEXT NOT NULL,
    key_hash               BLOB NOT NULL UNIQUE,
    -- After a rotation the old secret keeps working until previous_expires_at.
    previous_key_hash      BLOB UNIQUE,
    previous_expires_at    INTEGER,
    user_id                TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    organization_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    enabled                INTEGER NOT NULL DEFAULT 1,
    expires_at             INTEGER,
    rate_limit_enabled     INTEGER NOT NULL DEFAULT 0,
    rate_limit_time_window INTEGER,
    rate_limit_max         INTEGER,
    remaining              INTEGER,
    refill_amount          INTEGER,
    refill_interval        INTEGER,
    last_refill_at         INTEGER,
    scope_read_only        INTEGER NOT NULL DEFAULT 0,
    scope_project_ids      TEXT,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
) STRICT;
CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE INDEX api_keys_org ON api_keys (organization_id);
CREATE INDEX api_keys_user_org ON api_keys (user_id, organization_id);

-- What the usage flush writes, apart from the wide key rows: a flush rewrites only these
-- small rows, in key order, so a page holds many of them and is written once per flush.
CREATE TABLE key_usage (
    key_id          TEXT PRIMARY KEY REFERENCES api_keys(id) ON DELETE CASCADE,
    last_used_at    INTEGER,
    request_count   INTEGER NOT NULL DEFAULT 0,
    -- The client address and user agent of the last request the key made.
    last_address    TEXT,
    last_user_agent TEXT
) STRICT, WITHOUT ROWID;
-- A key's requests per hour by outcome (`hour` is the hour's start, in ms), written by
-- the usage flush and pruned after the usage retention.
CREATE TABLE key_usage_hours (
    key_id         TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    hour           INTEGER NOT NULL,
    ok             INTEGER NOT NULL DEFAULT 0,
    rate_limited   INTEGER NOT NULL DEFAULT 0,
    usage_exceeded INTEGER NOT NULL DEFAULT 0,
    refused        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, hour)
) STRICT, WITHOUT ROWID;
CREATE INDEX key_usage_hours_hour ON key_usage_hours (hour);

-- The hosts and path prefixes that forward auth maps to applications: a host and path
-- pair is unique on the server. Rows vanish with their application.
CREATE TABLE domains (
    id             TEXT PRIMARY KEY,
    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    host           TEXT NOT NULL,
    path           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (host, path)
) STRICT;
CREATE INDEX domains_application ON domains (application_id);
CREATE INDEX domains_org ON domains (organization_id);

-- Two-factor sign-in.
-- A user's TOTP secret, sealed (AES-256-GCM, nonce first) with the key kept outside
-- the database; `last_step` is the last time step accepted, so no code works twice.
CREATE TABLE two_factors (
    user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret     BLOB NOT NULL,
    last_step  INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
-- Backup codes, by SHA-256; each works once.
CREATE TABLE backup_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT, WITHOUT ROWID;
-- The password step of a sign-in that waits for its code (the short-lived cookie).
CREATE TABLE two_factor_challenges (
    token_hash   BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    callback_url TEXT,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX two_factor_challenges_user ON two_factor_challenges (user_id);
CREATE INDEX two_factor_challenges_expiry ON two_factor_challenges (expires_at);
-- Browsers that skip the code step ("trust this device"); revoked with the sessions.
CREATE TABLE trusted_devices (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX trusted_devices_user ON trusted_devices (user_id);
CREATE INDEX trusted_devices_expiry ON trusted_devices (expires_at);
-- Password-reset links an owner or admin made for a member: by SHA-256, one use.
CREATE TABLE password_resets (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX password_resets_user ON password_resets (user_id);
CREATE INDEX password_resets_expiry ON password_resets (expires_at);

-- The audit log: append-only, never a secret. Rows outlive what they name (no foreign
-- keys), until the audit retention prunes them. `subject_user_id` is the user an event
-- concerns (the one signing in, the member removed); `count` is above 1 for refusals
-- counted in memory and written together; `details` is a small JSON object.
CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    organization_id TEXT,
    actor_type      TEXT NOT NULL,
    actor_id        TEXT,
    actor_user_id   TEXT,
    actor_label     TEXT,
    subject_user_id TEXT,
    action          TEXT NOT NULL,
    resource_type   TEXT,
    resource_id     TEXT,
    outcome         TEXT NOT NULL,
    count           INTEGER NOT NULL DEFAULT 1,
    client_address  TEXT,
    user_agent      TEXT,
    request_id      TEXT,
    details         TEXT
) STRICT;
CREATE INDEX audit_events_org ON audit_events (organization_id, at);
CREATE INDEX audit_events_subject ON audit_events (subject_user_id, at);
CREATE INDEX audit_events_at ON audit_events (at);
