
    -- When a license stopped being used because the operator deactivated it
    -- (POST /license/deactivate); replaced_at is set at the same time.
    ALTER TABLE licenses ADD COLUMN deactivated_at INTEGER;

    -- The latest time this installation has seen, so that a clock wound
    -- back while it was stopped is noticed at the next start. One row.
    CREATE TABLE clock (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        high_water_mark  INTEGER NOT NULL
    ) STRICT;

    -- Every release receipt this installation signed. `counter` only grows:
    -- the vendor refuses a receipt it has seen, or an older one.
    CREATE TABLE release_receipts (
        counter                  INTEGER PRIMARY KEY CHECK (counter >= 1),
        license_id               INTEGER NOT NULL REFERENCES licenses (id),
        token                    TEXT    NOT NULL,
        serial                   INTEGER NOT NULL,
        license_key_fingerprint  TEXT    NOT NULL,
        released_at              INTEGER NOT NULL
    ) STRICT;
    