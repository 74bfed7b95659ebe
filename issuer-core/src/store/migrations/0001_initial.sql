-- Times are Unix seconds (UTC). Binary values (fingerprints, hashes, keys,
-- ids) are unpadded base64url text, as on the wire.

-- The public halves of the issuer's signing keys; the private halves live
-- in the key directory, never here.
CREATE TABLE signing_keys (
    key_id      TEXT PRIMARY KEY,
    public_key  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
) STRICT;

-- A license key is never stored: only its fingerprint (what requests carry)
-- and a hint (its first group) for people to recognise it.
CREATE TABLE licenses (
    id               INTEGER PRIMARY KEY,
    key_fingerprint  TEXT NOT NULL UNIQUE,
    key_hint         TEXT NOT NULL,
    customer         TEXT NOT NULL,
    features         TEXT NOT NULL,  -- JSON array of names, sorted and unique
    limits           TEXT NOT NULL,  -- JSON object of name to integer
    expires_at       INTEGER,        -- NULL: never expires
    max_devices      INTEGER NOT NULL CHECK (max_devices >= 1),
    status           TEXT NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'suspended', 'revoked')),
    created_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX licenses_by_hint ON licenses (key_hint);
CREATE INDEX licenses_by_customer ON licenses (customer COLLATE NOCASE);

-- A seat of a license. public_key is NULL until the first issuance binds
-- the device id to one installation's key.
CREATE TABLE devices (
    id                INTEGER PRIMARY KEY,
    license_id        INTEGER NOT NULL REFERENCES licenses (id),
    client_device_id  TEXT NOT NULL UNIQUE,
    label             TEXT,
    public_key        TEXT,
    created_at        INTEGER NOT NULL,
    bound_at          INTEGER,
    CHECK ((public_key IS NULL) = (bound_at IS NULL))
) STRICT;
CREATE INDEX devices_by_license ON devices (license_id);

-- Every payload ever issued, keyed by the request it answers so that a
-- repeated request gets the same payload back.
CREATE TABLE issuances (
    id            INTEGER PRIMARY KEY,
    license_id    INTEGER NOT NULL REFERENCES licenses (id),
    device_id     INTEGER NOT NULL REFERENCES devices (id),
    request_hash  TEXT NOT NULL UNIQUE,
    request_id    TEXT NOT NULL,
    serial        INTEGER NOT NULL CHECK (serial >= 1),
    key_id        TEXT NOT NULL REFERENCES signing_keys (key_id),
    payload       TEXT NOT NULL,
    issued_at     INTEGER NOT NULL,
    UNIQUE (device_id, serial)
) STRICT;
CREATE INDEX issuances_by_license ON issuances (license_id);
