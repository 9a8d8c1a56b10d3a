-- Accounts, devices and their tokens.
CREATE TABLE users (
    uid           TEXT PRIMARY KEY NOT NULL,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE devices (
    id         TEXT PRIMARY KEY NOT NULL,
    uid        TEXT NOT NULL REFERENCES users(uid),
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (uid, name)
);

-- Tokens are stored as the SHA-256 of the random token, never in the clear.
CREATE TABLE tokens (
    token_hash BLOB PRIMARY KEY NOT NULL,
    device_id  TEXT NOT NULL REFERENCES devices(id),
    created_at INTEGER NOT NULL
);

CREATE TABLE groups (
    guid       TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    guid TEXT NOT NULL REFERENCES groups(guid),
    uid  TEXT NOT NULL REFERENCES users(uid),
    PRIMARY KEY (guid, uid)
);

-- One row per call: the whole state, rewritten on every step.
CREATE TABLE calls (
    session_id    TEXT PRIMARY KEY NOT NULL,
    status        TEXT NOT NULL,
    initiated_at  INTEGER NOT NULL,
    ring_deadline INTEGER NOT NULL,
    state_json    TEXT NOT NULL
);
CREATE INDEX calls_live ON calls(status) WHERE status IN ('initiated', 'ongoing');

-- One row per participant: the history index.
CREATE TABLE call_participants (
    session_id   TEXT NOT NULL REFERENCES calls(session_id),
    uid          TEXT NOT NULL,
    initiated_at INTEGER NOT NULL,
    status       TEXT NOT NULL,
    PRIMARY KEY (session_id, uid)
);
CREATE INDEX call_participants_history ON call_participants(uid, initiated_at DESC);
