-- Console roles. A user made before roles existed gets NULL: it reads as
-- `admin` (what every user could do then), and the console warns at
-- start-up until someone sets that user's role with `user role`.
ALTER TABLE users ADD COLUMN role TEXT CHECK (role IN ('admin', 'issuer', 'viewer'));
