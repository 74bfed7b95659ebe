//! Licenses: insertion, lookups, terms, status and the search planner of
//! the license list.

use super::*;

pub(super) const LICENSE_COLUMNS: &str = "l.id, l.key_fingerprint, l.key_hint, l.customer, l.features, \
     l.limits, l.expires_at, l.max_devices, l.status, l.created_at, l.grace_seconds, \
     l.clock_policy";
/// How many columns [`LICENSE_COLUMNS`] selects.
pub(super) const LICENSE_COLUMN_COUNT: usize = 12;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct BadClockPolicy(String);

pub(super) fn license_from_row(row: &Row<'_>) -> rusqlite::Result<LicenseRecord> {
    Ok(LicenseRecord {
        id: row.get(0)?,
        key_fingerprint: parsed(row, 1)?,
        key_hint: row.get(2)?,
        customer: row.get(3)?,
        features: json(row, 4)?,
        limits: json(row, 5)?,
        expires_at: row.get(6)?,
        max_devices: row.get(7)?,
        status: parsed(row, 8)?,
        created_at: row.get(9)?,
        grace_seconds: u64_from(row, 10)?,
        clock_policy: text_as(row, 11, |s| s.parse().map_err(BadClockPolicy))?,
    })
}

/// The fields of a license to insert; `id` is assigned by the store.
pub(crate) fn insert_license(
    conn: &Connection,
    license: &LicenseRecord,
) -> Result<LicenseRecord, StoreError> {
    execute_cached(
        conn,
        "INSERT INTO licenses (key_fingerprint, key_hint, customer, features, limits,
                               expires_at, max_devices, status, created_at, grace_seconds,
                               clock_policy)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            license.key_fingerprint.to_string(),
            license.key_hint,
            license.customer,
            to_json(&license.features)?,
            to_json(&license.limits)?,
            license.expires_at,
            license.max_devices,
            license.status.as_str(),
            license.created_at,
            ordered("the grace period (seconds)", license.grace_seconds)?,
            license.clock_policy.as_str(),
        ],
    )?;
    Ok(LicenseRecord {
        id: conn.last_insert_rowid(),
        ..license.clone()
    })
}

pub(crate) fn license_by_fingerprint(
    conn: &Connection,
    fingerprint: &Digest,
) -> Result<Option<LicenseRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!("SELECT {LICENSE_COLUMNS} FROM licenses l WHERE l.key_fingerprint = ?1"),
        [fingerprint.to_string()],
        license_from_row,
    )
    .optional()?)
}

pub(crate) fn license_by_id(
    conn: &Connection,
    id: i64,
) -> Result<Option<LicenseRecord>, StoreError> {
    Ok(query_row_cached(
        conn,
        &format!("SELECT {LICENSE_COLUMNS} FROM licenses l WHERE l.id = ?1"),
        [id],
        license_from_row,
    )
    .optional()?)
}

/// The license a row of another table names: the schema's foreign key
/// says it exists, so its absence means the store was altered.
pub(crate) fn license_of_row(conn: &Connection, id: i64) -> Result<LicenseRecord, StoreError> {
    license_by_id(conn, id)?.ok_or_else(|| StoreError::Altered {
        what: format!("license #{id}, named by another row, does not exist"),
    })
}

/// The ids of the licenses the CLI's and the console's search finds,
/// ignoring case: the start of the customer name (`?1`), the start of the
/// key hint (`?2`), or the exact key fingerprint (`?3`). Prefixes, not
/// substrings, and a union of three index lookups (see migration 0004), so
/// that a search reads only what it finds, even among a million licenses.
pub(crate) const LICENSE_SEARCH: &str = "SELECT id FROM licenses WHERE customer LIKE ?1 ESCAPE '\\'
     UNION SELECT id FROM licenses WHERE key_hint LIKE ?2 ESCAPE '\\'
     UNION SELECT id FROM licenses WHERE key_fingerprint = ?3";

/// What [`LICENSE_SEARCH`] binds for the text a person typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchTerms {
    customer_prefix: String,
    hint_prefix: String,
    fingerprint: String,
}

impl SearchTerms {
    /// `None` for no search (nothing but spaces typed). A whole license key
    /// is searched by its fingerprint. A key prefix may be typed with or
    /// without `REN3K1-`, and longer than the hint a license keeps.
    pub(crate) fn new(search: Option<&str>) -> Option<Self> {
        let text = search.map(str::trim).filter(|s| !s.is_empty())?;
        let fingerprint = match LicenseKey::parse(text) {
            Ok(key) => key.fingerprint().to_string(),
            Err(_) => text.to_owned(),
        };
        const KEY_PREFIX: &str = "REN3K1-";
        // "REN3K1-" and the first group: what a stored hint shows.
        const HINT_LEN: usize = KEY_PREFIX.len() + 5;
        let key_text = match text.get(..KEY_PREFIX.len()) {
            Some(start) if start.eq_ignore_ascii_case(KEY_PREFIX) => text.to_owned(),
            _ => format!("{KEY_PREFIX}{text}"),
        };
        let hint_text: String = key_text.chars().take(HINT_LEN).collect();
        Some(Self {
            customer_prefix: prefix_pattern(text),
            hint_prefix: prefix_pattern(&hint_text),
            fingerprint,
        })
    }

    /// `?1` to `?3` of [`LICENSE_SEARCH`].
    fn params(self) -> [String; 3] {
        [self.customer_prefix, self.hint_prefix, self.fingerprint]
    }
}

/// A LIKE pattern matching text that starts with `text`, taken literally.
pub(super) fn prefix_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}%")
}

/// The two seat counts of a [`LicenseSummary`], after the license columns.
pub(super) const SEAT_COUNTS: &str = "(SELECT COUNT(*) FROM devices d WHERE d.license_id = l.id),
                l.bound_devices";

pub(super) fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<LicenseSummary> {
    Ok(LicenseSummary {
        license: license_from_row(row)?,
        devices: row.get(LICENSE_COLUMN_COUNT)?,
        bound_devices: row.get(LICENSE_COLUMN_COUNT + 1)?,
    })
}

/// Licenses with their seat counts, oldest first, matching `search` (see
/// [`LICENSE_SEARCH`]).
pub(crate) fn license_summaries(
    conn: &Connection,
    search: Option<&str>,
) -> Result<Vec<LicenseSummary>, StoreError> {
    let select = format!("SELECT {LICENSE_COLUMNS}, {SEAT_COUNTS} FROM licenses l");
    let order = "ORDER BY l.created_at, l.id";
    let rows = match SearchTerms::new(search) {
        Some(terms) => conn
            .prepare_cached(&format!(
                "{select} WHERE l.id IN ({LICENSE_SEARCH}) {order}"
            ))?
            .query_map(terms.params(), summary_from_row)?
            .collect::<rusqlite::Result<_>>()?,
        None => conn
            .prepare_cached(&format!("{select} {order}"))?
            .query_map([], summary_from_row)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(rows)
}

/// At most `limit` licenses matching `search`, newest first, with ids below
/// `before`: keyset pagination on the rowid, so a page costs the same at
/// the first license as at the millionth.
pub(crate) fn license_summaries_page(
    conn: &Connection,
    search: Option<&str>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<LicenseSummary>, StoreError> {
    let (plan, terms) = page_plan(conn, search)?;
    let mut stmt = conn.prepare_cached(&license_page_sql(plan))?;
    let rows = match terms {
        Some(terms) => {
            let [customer, hint, fingerprint] = terms.params();
            stmt.query_map(
                params![customer, hint, fingerprint, before, limit],
                summary_from_row,
            )?
            .collect::<rusqlite::Result<_>>()?
        }
        None => stmt
            .query_map(params![before, limit], summary_from_row)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok(rows)
}

/// How a page of the license list finds its licenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PagePlan {
    /// No search: walk the rowid down from `before`.
    Browse,
    /// Few matches: take them all from the indexes of [`LICENSE_SEARCH`]
    /// and sort their ids.
    SortMatches,
    /// Many matches: walk the rowid down, testing each license, since a
    /// page of them turns up within a few thousand rows.
    WalkMatches,
}

/// From this many matches on, a search page walks the rowid rather than
/// sorting the matches. Sorting costs about one step per match; walking,
/// about `page size × licenses / matches` rows. At 5,000 neither passes a
/// few thousand steps for a store of a million licenses.
pub(super) const WALK_FROM_MATCHES: u32 = 5_000;

/// Which [`PagePlan`] suits `search`, counting its matches in the indexes
/// only up to [`WALK_FROM_MATCHES`].
pub(crate) fn page_plan(
    conn: &Connection,
    search: Option<&str>,
) -> Result<(PagePlan, Option<SearchTerms>), StoreError> {
    let Some(terms) = SearchTerms::new(search) else {
        return Ok((PagePlan::Browse, None));
    };
    let matches: u32 = query_row_cached(
        conn,
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM licenses
                  WHERE customer LIKE ?1 ESCAPE '\\' LIMIT ?3))
              + (SELECT COUNT(*) FROM (SELECT 1 FROM licenses
                  WHERE key_hint LIKE ?2 ESCAPE '\\' LIMIT ?3))",
        params![terms.customer_prefix, terms.hint_prefix, WALK_FROM_MATCHES],
        |row| row.get(0),
    )?;
    let plan = if matches >= WALK_FROM_MATCHES {
        PagePlan::WalkMatches
    } else {
        PagePlan::SortMatches
    };
    Ok((plan, Some(terms)))
}

/// The query of [`license_summaries_page`] for each [`PagePlan`]. Browsing
/// binds `before` as `?1` and the limit as `?2`; a search binds its three
/// terms, then `before` and the limit. Sorting takes the page's ids first
/// and only then reads those licenses and counts their seats; its `+id`
/// keeps the bound on the ids out of the union's arms, where SQLite could
/// walk the rowid for an arm instead of using its index (300 ms for some
/// key prefixes at a million licenses). Walking tests the terms on
/// `+column`, which keeps the planner off the indexes.
pub(super) fn license_page_sql(plan: PagePlan) -> String {
    // `l.id < COALESCE(..)`, not `?1 IS NULL OR l.id < ?1`: the OR hid the
    // bound from the planner, so a deep page scanned every newer row.
    const NO_BOUND: &str = "9223372036854775807";
    let columns = format!("{LICENSE_COLUMNS}, {SEAT_COUNTS}");
    match plan {
        PagePlan::Browse => format!(
            "SELECT {columns} FROM licenses l
             WHERE l.id < COALESCE(?1, {NO_BOUND}) ORDER BY l.id DESC LIMIT ?2"
        ),
        PagePlan::SortMatches => format!(
            "WITH page (id) AS MATERIALIZED (
                 SELECT id FROM ({LICENSE_SEARCH})
                 WHERE +id < COALESCE(?4, {NO_BOUND}) ORDER BY id DESC LIMIT ?5)
             SELECT {columns} FROM page JOIN licenses l ON l.id = page.id
             ORDER BY l.id DESC"
        ),
        PagePlan::WalkMatches => format!(
            "SELECT {columns} FROM licenses l
             WHERE (+l.customer LIKE ?1 ESCAPE '\\'
                    OR +l.key_hint LIKE ?2 ESCAPE '\\'
                    OR +l.key_fingerprint = ?3)
               AND l.id < COALESCE(?4, {NO_BOUND})
             ORDER BY l.id DESC LIMIT ?5"
        ),
    }
}

/// How SQLite runs [`license_summaries_page`]: the plan chosen and the
/// steps of its query plan.
#[cfg(test)]
pub(crate) fn license_page_plan(
    conn: &Connection,
    search: Option<&str>,
    before: Option<i64>,
) -> Result<(PagePlan, Vec<String>), StoreError> {
    let (plan, terms) = page_plan(conn, search)?;
    let sql = format!("EXPLAIN QUERY PLAN {}", license_page_sql(plan));
    let mut stmt = conn.prepare(&sql)?;
    let step = |row: &Row<'_>| row.get::<_, String>(3);
    let steps = match terms {
        Some(terms) => {
            let [customer, hint, fingerprint] = terms.params();
            stmt.query_map(params![customer, hint, fingerprint, before, 26], step)?
                .collect::<rusqlite::Result<_>>()?
        }
        None => stmt
            .query_map(params![before, 26], step)?
            .collect::<rusqlite::Result<_>>()?,
    };
    Ok((plan, steps))
}

/// Active licenses that expire after `from` and up to `until`, soonest first.
pub(crate) fn licenses_expiring(
    conn: &Connection,
    from: i64,
    until: i64,
    limit: u32,
) -> Result<Vec<LicenseRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LICENSE_COLUMNS} FROM licenses l
         WHERE l.expires_at > ?1 AND l.expires_at <= ?2 AND l.status = 'active'
         ORDER BY l.expires_at, l.id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![from, until, limit], license_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Replaces the terms a vendor may edit after creation.
pub(crate) fn update_license_terms(
    conn: &Connection,
    license: &LicenseRecord,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "UPDATE licenses SET features = ?1, limits = ?2, expires_at = ?3, grace_seconds = ?4,
                             clock_policy = ?5
         WHERE id = ?6",
        params![
            to_json(&license.features)?,
            to_json(&license.limits)?,
            license.expires_at,
            ordered("the grace period (seconds)", license.grace_seconds)?,
            license.clock_policy.as_str(),
            license.id,
        ],
    )?;
    Ok(())
}

/// Installations bound to a seat, over every license: the sum of the
/// per-license counts the triggers of migration 0005 keep.
pub(crate) fn seats_in_use(conn: &Connection) -> Result<u64, StoreError> {
    let seats: i64 = query_row_cached(
        conn,
        "SELECT COALESCE(SUM(bound_devices), 0) FROM licenses",
        [],
        |row| row.get(0),
    )?;
    Ok(u64::try_from(seats).unwrap_or(0))
}

/// Reads the licenses table, as cheaply as SQLite can: a readiness check.
pub(crate) fn licenses_readable(conn: &Connection) -> Result<(), StoreError> {
    query_row_cached(conn, "SELECT EXISTS (SELECT 1 FROM licenses)", [], |row| {
        row.get::<_, bool>(0)
    })?;
    Ok(())
}

/// Rows of a table; `table` is one of this module's own table names.
pub(crate) fn count_rows(conn: &Connection, table: &'static str) -> Result<u64, StoreError> {
    let count: i64 = query_row_cached(conn, &format!("SELECT COUNT(*) FROM {table}"), [], |row| {
        row.get(0)
    })?;
    Ok(u64::try_from(count).unwrap_or(0))
}

pub(crate) fn set_license_status(
    conn: &Connection,
    license_id: i64,
    status: LicenseStatus,
) -> Result<(), StoreError> {
    execute_cached(
        conn,
        "UPDATE licenses SET status = ?1 WHERE id = ?2",
        params![status.as_str(), license_id],
    )?;
    Ok(())
}
