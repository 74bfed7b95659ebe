-- The installation's sequence number (docs/FORMAT.md §6): every issuance
-- records the installation key its payload is bound to and the counter of
-- the request it answers, so that a release receipt signed before a
-- request the vendor answered (kept back while the installation registered
-- again) is refused as stale. The highest answered counter of a seat is
-- read per installation key: a new installation binding the seat starts
-- with none, and issuing the same request again adds no row, so it never
-- lowers it.
--
-- Issuances made before this migration answered version 1 requests, which
-- carry no counter: both columns are NULL there, and such an issuance holds
-- no receipt back.
ALTER TABLE issuances ADD COLUMN public_key TEXT;
ALTER TABLE issuances ADD COLUMN request_counter INTEGER
    CHECK (request_counter IS NULL OR (request_counter >= 1 AND public_key IS NOT NULL));
