
    -- The installation's Ed25519 key pair. One row, created on first start.
    CREATE TABLE device_key (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        seed        BLOB    NOT NULL CHECK (length(seed) = 32),
        public_key  TEXT    NOT NULL,
        created_at  INTEGER NOT NULL
    ) STRICT;

    -- Requests exported and not yet answered. `seq` orders them: clocks can
    -- repeat or go back, insertion order cannot.
    CREATE TABLE pending_requests (
        seq                      INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id               TEXT    NOT NULL UNIQUE,
        token                    TEXT    NOT NULL,
        request_hash             TEXT    NOT NULL UNIQUE,
        license_key_fingerprint  TEXT    NOT NULL,
        created_at               INTEGER NOT NULL
    ) STRICT;

    -- Every imported payload. The active license is the one row whose
    -- replaced_at is NULL. `serial` holds the u64 serial's bit pattern.
    CREATE TABLE licenses (
        id                       INTEGER PRIMARY KEY AUTOINCREMENT,
        token                    TEXT    NOT NULL,
        serial                   INTEGER NOT NULL,
        license_key_fingerprint  TEXT    NOT NULL,
        key_id                   TEXT    NOT NULL,
        expires_at               INTEGER,
        imported_at              INTEGER NOT NULL,
        replaced_at              INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX licenses_one_active ON licenses ((replaced_at IS NULL))
        WHERE replaced_at IS NULL;
    