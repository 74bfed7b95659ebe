-- The audit log's hash chain (`audit::chain`): each row carries the hash of
-- the row before it and its own, SHA-256 over a length-prefixed encoding
-- of that previous hash and the row's columns, both as 64 lowercase hex
-- digits. Rows written before this step are chained by the Rust step that
-- runs after this SQL, in the same migration transaction (SQLite has no
-- SHA-256): in id order, from the genesis value, once. A NULL hash after
-- that is never filled in again; `audit verify` reports it as an edit.
ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;
