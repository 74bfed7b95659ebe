-- The trust chain (docs/FORMAT.md §6, §7): the root's public key, each
-- signing key's certificate and the revocation lists the root signed.
-- The root's private key is never here: it lives offline, in a directory
-- of its own. Tokens are stored as shipped and verified again when read,
-- so an altered row signs nothing.

-- The one root this store's payloads chain to.
CREATE TABLE trust_root (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    public_key    TEXT NOT NULL,
    installed_at  INTEGER NOT NULL
) STRICT;

-- A signing key's certificate; a key without one signs nothing. Installing
-- a new certificate for a key (a longer window) replaces the old one.
CREATE TABLE certificates (
    key_id        TEXT PRIMARY KEY REFERENCES signing_keys (key_id),
    token         TEXT NOT NULL,
    not_before    INTEGER NOT NULL,
    not_after     INTEGER NOT NULL CHECK (not_after > not_before),
    issued_at     INTEGER NOT NULL,
    installed_at  INTEGER NOT NULL
) STRICT;

-- Every revocation list installed; the highest version travels in every
-- payload, and a new one must be higher still.
CREATE TABLE revocation_lists (
    version       INTEGER PRIMARY KEY CHECK (version >= 1),
    token         TEXT NOT NULL,
    installed_at  INTEGER NOT NULL
) STRICT;
