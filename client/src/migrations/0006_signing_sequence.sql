
    -- The installation's sequence number (docs/FORMAT.md §6): every license
    -- request and every release receipt the device key signs takes the next
    -- value, in the transaction that records it, so the vendor can tell a
    -- receipt signed after a request from one kept back since. One row;
    -- `last_counter` is the value taken last. Receipts were counted alone
    -- before, and requests (ren3-request-v1) carried no counter, so the
    -- sequence goes on above the last receipt.
    CREATE TABLE signing_sequence (
        id            INTEGER PRIMARY KEY CHECK (id = 1),
        last_counter  INTEGER NOT NULL CHECK (last_counter >= 0)
    ) STRICT;
    INSERT INTO signing_sequence (id, last_counter)
        SELECT 1, coalesce(max(counter), 0) FROM release_receipts;

    -- The sequence number each request took; NULL on requests made before
    -- this migration, which carried none.
    ALTER TABLE pending_requests ADD COLUMN counter INTEGER CHECK (counter >= 1);
    