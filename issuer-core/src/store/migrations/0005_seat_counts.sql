-- Each license's number of bound devices, kept by triggers in the same
-- transaction as the change, so that the seat check of every issuance
-- reads one row instead of counting the license's devices.
ALTER TABLE licenses ADD COLUMN bound_devices INTEGER NOT NULL DEFAULT 0
    CHECK (bound_devices >= 0);
UPDATE licenses SET bound_devices = (
    SELECT COUNT(*) FROM devices d
    WHERE d.license_id = licenses.id AND d.public_key IS NOT NULL);

CREATE TRIGGER devices_bound_on_insert AFTER INSERT ON devices
    WHEN NEW.public_key IS NOT NULL
BEGIN
    UPDATE licenses SET bound_devices = bound_devices + 1 WHERE id = NEW.license_id;
END;

CREATE TRIGGER devices_bound_on_delete AFTER DELETE ON devices
    WHEN OLD.public_key IS NOT NULL
BEGIN
    UPDATE licenses SET bound_devices = bound_devices - 1 WHERE id = OLD.license_id;
END;

CREATE TRIGGER devices_bound_on_update AFTER UPDATE OF public_key, license_id ON devices
BEGIN
    UPDATE licenses SET bound_devices = bound_devices - 1
        WHERE id = OLD.license_id AND OLD.public_key IS NOT NULL;
    UPDATE licenses SET bound_devices = bound_devices + 1
        WHERE id = NEW.license_id AND NEW.public_key IS NOT NULL;
END;
