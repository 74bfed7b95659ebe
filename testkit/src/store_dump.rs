//! Every row of an SQLite store as text: equal dumps before and after a
//! refusal prove that it changed nothing.

use std::path::Path;

/// A textual dump of every table of an SQLite file, read-only.
pub fn dump_sqlite(path: &Path) -> String {
    dump_sqlite_except(path, &[])
}

/// [`dump_sqlite`] without the tables named in `skip` (e.g. the issuer's
/// `audit`, which records even a request answered again).
pub fn dump_sqlite_except(path: &Path, skip: &[&str]) -> String {
    use rusqlite::{Connection, OpenFlags, types::ValueRef};
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.retain(|t| !t.starts_with("sqlite_") && !skip.contains(&t.as_str()));
    let mut out = String::new();
    for table in tables {
        out.push_str(&format!("[{table}]\n"));
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY rowid"))
            .unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                let cell = match row.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".to_owned(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(v) => String::from_utf8_lossy(v).into_owned(),
                    ValueRef::Blob(v) => format!(
                        "x'{}'",
                        v.iter().map(|b| format!("{b:02x}")).collect::<String>()
                    ),
                };
                out.push_str(&cell);
                out.push('|');
            }
            out.push('\n');
        }
    }
    out
}
