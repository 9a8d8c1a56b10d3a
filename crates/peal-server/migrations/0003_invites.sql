-- Invitations to make an account. The code is stored as its SHA-256, like
-- tokens; `id` is the public handle an admin lists and revokes by.
CREATE TABLE invites (
    id         TEXT PRIMARY KEY NOT NULL,
    code_hash  BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    uses       INTEGER NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    revoked_at INTEGER
);

-- Which invite made an account (none: made by an admin).
ALTER TABLE users ADD COLUMN invite_id TEXT REFERENCES invites(id);
