-- The web console: its users, their sessions, login throttling, and the
-- audit log of every change made by the console or the CLI.

-- Console users. password_hash is an Argon2id PHC string; no password is
-- ever stored.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

-- Server-side sessions. Only the SHA-256 of the session id is stored, so a
-- copy of the store cannot be used to take over a session.
CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Failed logins, per throttling key (a user name or a client address),
-- kept only as long as the throttling window needs them.
CREATE TABLE login_failures (
    id           INTEGER PRIMARY KEY,
    throttle_key TEXT NOT NULL,
    at           INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_by_key ON login_failures (throttle_key, at);

-- Every change and every login attempt: who, what, when, and the result.
-- Never a password, a token or a license key: hints and fingerprints only.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    subject  TEXT NOT NULL,
    result   TEXT NOT NULL,
    detail   TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_actor ON audit (actor);
CREATE INDEX audit_by_action ON audit (action);

-- The dashboard's "expiring soon" and "latest issuances".
CREATE INDEX licenses_by_expiry ON licenses (expires_at);
CREATE INDEX issuances_by_time ON issuances (issued_at);
