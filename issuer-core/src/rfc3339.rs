//! Serde helpers that show Unix-second fields as RFC 3339 in JSON output,
//! the spelling people read everywhere else in the tool.

use ren3_shared::timestamp;
use serde::Serializer;

pub(crate) fn serialize<S: Serializer>(
    unix_seconds: &i64,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&timestamp::format(*unix_seconds))
}

pub(crate) fn serialize_option<S: Serializer>(
    unix_seconds: &Option<i64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match unix_seconds {
        Some(t) => serialize(t, serializer),
        None => serializer.serialize_none(),
    }
}
