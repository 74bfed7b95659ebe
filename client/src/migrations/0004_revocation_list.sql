
    -- The newest revocation list this installation has seen, signed by the
    -- build's root. One row; `version` holds the u64 version's bit pattern
    -- and only rises. It is one of three sources of the effective list (with
    -- the build's floor and the lists inside stored payloads), so deleting
    -- it does not lower the effective version.
    CREATE TABLE revocation_list (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        version     INTEGER NOT NULL,
        token       TEXT    NOT NULL,
        stored_at   INTEGER NOT NULL
    ) STRICT;
    