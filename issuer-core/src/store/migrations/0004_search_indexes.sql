-- Searches that stay index lookups at a million licenses.

-- License search matches the start of a key hint ignoring case, as LIKE
-- does; only an index with the NOCASE collation can serve such a LIKE.
DROP INDEX licenses_by_hint;
CREATE INDEX licenses_by_hint ON licenses (key_hint COLLATE NOCASE);
