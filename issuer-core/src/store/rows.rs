//! Column codecs shared by every table's queries.

use super::*;

/// Reads a text column with `parse`, reporting a bad value as a conversion
/// error of that column.
pub(super) fn text_as<T, E>(
    row: &Row<'_>,
    idx: usize,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> rusqlite::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.get(idx)?;
    parse(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

pub(super) fn parsed<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text_as(row, idx, str::parse)
}

/// A `u64` column (serials, counters, versions, grace), read through the
/// codec both stores share ([`U64`]).
pub(super) fn u64_from(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, U64>(idx)?.0)
}

pub(super) fn optional_u64(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<u64>> {
    Ok(row.get::<_, Option<U64>>(idx)?.map(|U64(value)| value))
}

/// A `u64` for a column this store compares or orders in SQL: every one
/// of the issuer's. A value above [`U64::SQL_ORDERED_MAX`] would sort
/// below 0 there, so it is refused instead of written (`what` names it
/// in the refusal).
pub(crate) fn ordered(what: &'static str, value: u64) -> Result<U64, StoreError> {
    if value > U64::SQL_ORDERED_MAX {
        return Err(StoreError::OutOfRange { what, value });
    }
    Ok(U64(value))
}

pub(super) fn parsed_opt<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: Option<String> = row.get(idx)?;
    text.map(|t| {
        t.parse()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
    })
    .transpose()
}

pub(super) fn json<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

pub(super) fn to_json<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}
