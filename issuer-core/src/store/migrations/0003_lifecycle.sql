-- The license lifecycle: grace periods and clock policy per license, and
-- the record of every seat given back.

-- Carried into every payload issued from now on. A license that never
-- expires has no grace period.
ALTER TABLE licenses ADD COLUMN grace_seconds INTEGER NOT NULL DEFAULT 0
    CHECK (grace_seconds >= 0);
ALTER TABLE licenses ADD COLUMN clock_policy TEXT NOT NULL DEFAULT 'advisory'
    CHECK (clock_policy IN ('advisory', 'enforcing'));

-- A seat given back: with the installation's signed release receipt, or
-- forced by the vendor (a lost machine) with a reason. public_key is the
-- installation that held the seat; a receipt's counter must exceed every
-- counter accepted before from that installation, so a receipt is
-- accepted once.
CREATE TABLE releases (
    id           INTEGER PRIMARY KEY,
    license_id   INTEGER NOT NULL REFERENCES licenses (id),
    device_id    INTEGER NOT NULL REFERENCES devices (id),
    public_key   TEXT NOT NULL,
    forced       INTEGER NOT NULL CHECK (forced IN (0, 1)),
    receipt      TEXT,            -- the receipt token as received
    serial       INTEGER,         -- the receipt's serial
    counter      INTEGER,         -- the receipt's counter
    receipt_released_at INTEGER,  -- the device's clock
    reason       TEXT,            -- why a seat was forced free
    actor        TEXT NOT NULL,
    released_at  INTEGER NOT NULL,
    CHECK ((forced = 1) = (receipt IS NULL)),
    CHECK (forced = 1 OR (serial >= 1 AND counter >= 1 AND receipt_released_at IS NOT NULL)),
    CHECK (forced = 0 OR reason IS NOT NULL)
) STRICT;
CREATE INDEX releases_by_device ON releases (device_id);
CREATE INDEX releases_by_installation ON releases (public_key, counter);
