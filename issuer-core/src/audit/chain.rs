//! The audit log's hash chain: each row carries the hash of the row before
//! it (`prev_hash`) and its own (`hash`), so that a row edited, deleted or
//! moved with SQLite directly shows at [`verify`].
//!
//! **What is hashed.** A row's hash is SHA-256 over, in this order:
//! 1. the domain tag `ren3-issuer audit chain v1` followed by a zero byte;
//! 2. the previous row's hash, 32 bytes ([`ChainHash::GENESIS`], 32 zero
//!    bytes, for the first row);
//! 3. the row's `id` and `at` (Unix seconds), each 8 bytes, big-endian
//!    two's complement;
//! 4. its `actor`, `action`, `subject`, `result` and `detail`, each as its
//!    UTF-8 length in 8 bytes big-endian, then those bytes.
//!
//! Every field has a fixed width or a length before it, so no two rows
//! encode alike. Both hashes are stored as 64 lowercase hex digits.
//!
//! **What it proves.** The chain has no key: whoever can write the store
//! can recompute every hash from the first row on. It shows an edit, a
//! deletion or a reordering made without doing so, and a rewrite or a
//! truncated tail only against a head kept elsewhere ([`Head`], `audit
//! head`): the row it names must still be there with the same hash.
//!
//! The hash of a new row is computed in the transaction that inserts it
//! (`store::insert_audit`), from the row with the highest id. Every write
//! of the store is `BEGIN IMMEDIATE` (`Store::write`), which holds SQLite's
//! write lock from the start, across processes: no other writer can append
//! between that read and the insert, so the chain cannot fork.
//!
//! One piece, a little over the usual size: the encoding that is hashed,
//! the walk that checks it and the sentence for each way it can break sit
//! together, so that a change to one cannot leave the others behind.

use std::fmt;
use std::ops::ControlFlow;

use sha2::{Digest as _, Sha256};

use crate::store::{self, AuditEntry, Store, StoreError};

const DOMAIN: &[u8] = b"ren3-issuer audit chain v1\0";

/// A link of the chain: a SHA-256 hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChainHash([u8; 32]);

impl ChainHash {
    /// What the first row is chained to.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// Exactly 64 lowercase hex digits, as stored; `None` otherwise.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 64 || text.iter().any(u8::is_ascii_uppercase) {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16);
            *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
        }
        Some(Self(bytes))
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainHash({self})")
    }
}

/// The columns of a row that its hash covers, besides the previous hash.
pub(crate) struct Linked<'a> {
    pub id: i64,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub result: &'a str,
    pub detail: &'a str,
}

impl<'a> Linked<'a> {
    fn of(entry: &'a AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at,
            actor: &entry.actor,
            action: &entry.action,
            subject: &entry.subject,
            result: &entry.result,
            detail: &entry.detail,
        }
    }
}

/// The hash of `row` chained after `prev` (the module's documentation says
/// exactly what is hashed).
pub(crate) fn link(prev: &ChainHash, row: &Linked<'_>) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(prev.0);
    hasher.update(row.id.to_be_bytes());
    hasher.update(row.at.to_be_bytes());
    for text in [row.actor, row.action, row.subject, row.result, row.detail] {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    ChainHash(hasher.finalize().into())
}

/// The newest row's id and hash, for the vendor to keep elsewhere; written
/// `ID:HASH`. An empty log's head is `0:` and [`ChainHash::GENESIS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub id: i64,
    pub hash: ChainHash,
}

impl Head {
    /// `ID:HASH` as [`Head`]'s `Display` writes it, or a bare hash (then
    /// the row is found by its hash); `None` if it is neither.
    pub fn parse(text: &str) -> Option<SavedHead> {
        let text = text.trim().to_ascii_lowercase();
        match text.split_once(':') {
            Some((id, hash)) => Some(SavedHead::Row(Head {
                id: id.parse().ok().filter(|id: &i64| *id >= 0)?,
                hash: ChainHash::parse(hash)?,
            })),
            None => ChainHash::parse(&text).map(SavedHead::Hash),
        }
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.id, self.hash)
    }
}

/// A head kept elsewhere, as given back to [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SavedHead {
    Row(Head),
    /// A hash without its row's id.
    Hash(ChainHash),
}

/// The newest row's id and hash; `store_altered` if that row has no
/// valid hash.
pub fn head(store: &Store) -> Result<Head, StoreError> {
    let last = store.read(|conn| store::last_audit_link(conn))?;
    match last {
        None => Ok(Head {
            id: 0,
            hash: ChainHash::GENESIS,
        }),
        Some((id, hash)) => match hash.as_deref().and_then(ChainHash::parse) {
            Some(hash) => Ok(Head { id, hash }),
            None => Err(StoreError::Altered {
                what: format!(
                    "audit row {id}, the newest, has no valid chain hash \
                     (`ren3-issuer audit verify` says more)"
                ),
            }),
        },
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every row is chained to the one before it; `head` is the last.
    Verified {
        rows: u64,
        head: Head,
    },
    Broken(Break),
}

/// The first row that breaks the chain, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The row, or the saved head's row for a head that is not in the log.
    pub id: i64,
    /// Its time, if the row is there.
    pub at: Option<i64>,
    pub problem: Problem,
    /// The rows before it, which verify.
    pub verified_rows: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Its hash is missing or not a hash.
    NoHash,
    /// Its columns no longer give its hash.
    Edited,
    /// It holds the row written with id `written_as`.
    Moved { written_as: i64 },
    /// It was written after the row now numbered `written_after`, not after
    /// the row before it.
    Reordered { written_after: i64 },
    /// It was chained to a row that is gone: rows `from..=to` were deleted
    /// (`from` is `None` when the rows before the first one were).
    Deleted { from: Option<i64>, to: i64 },
    /// The row before it, `predecessor`, was replaced or edited and given a
    /// new hash after this row was written.
    PredecessorChanged { predecessor: i64 },
    /// The saved head's row is gone; the log ends at `last`.
    HeadMissing { last: Option<i64> },
    /// No row has the saved head hash (given without its id); the log
    /// ends at `last`, which [`Break::id`] names too.
    HeadHashMissing { last: Option<i64> },
    /// The saved head's row is there with another hash.
    HeadChanged,
}

impl fmt::Display for Break {
    /// The row and what is wrong with it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.id;
        let ends = |last: &Option<i64>| match last {
            Some(last) => format!("the log ends at row {last}"),
            None => "the log is empty".to_owned(),
        };
        if let Problem::HeadHashMissing { last } = &self.problem {
            return write!(
                f,
                "no row has the saved head hash ({}): the rows after it were deleted, or the \
                 log was rewritten",
                ends(last)
            );
        }
        match self.at {
            Some(at) => write!(f, "row {id} ({}) ", ren3_shared::timestamp::format(at))?,
            None => write!(f, "row {id} ")?,
        }
        match &self.problem {
            Problem::NoHash => f.write_str("has no valid chain hash: it was edited"),
            Problem::Edited => f.write_str(
                "does not match its hash: its time, actor, action, subject, result, detail \
                 or id was edited after it was written",
            ),
            Problem::Moved { written_as } => write!(
                f,
                "holds the row written as row {written_as}: rows were reordered or renumbered"
            ),
            Problem::Reordered { written_after } => write!(
                f,
                "was written after the row now numbered {written_after}, not after the row \
                 before it: rows were reordered or renumbered"
            ),
            Problem::Deleted {
                from: Some(from),
                to,
            } if from == to => write!(
                f,
                "was chained to row {from}, which is missing: it was deleted"
            ),
            Problem::Deleted {
                from: Some(from),
                to,
            } => write!(
                f,
                "was chained to a row that is missing: rows {from} to {to} were deleted"
            ),
            Problem::Deleted { from: None, .. } => f.write_str(
                "is the first row but was chained to an earlier one: the rows before it were \
                 deleted",
            ),
            Problem::PredecessorChanged { predecessor } => write!(
                f,
                "was chained to another row {predecessor} than the one there now: row \
                 {predecessor} was replaced or edited, and its hash recomputed"
            ),
            Problem::HeadMissing { last } => match last {
                Some(last) if *last < id => write!(
                    f,
                    "(the saved head) is missing: {}, so the rows after it were deleted",
                    ends(&Some(*last))
                ),
                _ => write!(
                    f,
                    "(the saved head) is missing ({}): the log was rewritten",
                    ends(last)
                ),
            },
            Problem::HeadChanged => {
                f.write_str("has another hash than the saved head: the log was rewritten")
            }
            Problem::HeadHashMissing { .. } => Ok(()),
        }
    }
}

impl Break {
    /// How much of the log before it holds: "the 3 rows before it verify".
    pub fn verified_before(&self) -> String {
        match self.verified_rows {
            0 => "no row before it verifies".to_owned(),
            1 => "the row before it verifies".to_owned(),
            n => format!("the {n} rows before it verify"),
        }
    }

    /// What the vendor should do about it.
    pub fn what_to_do(&self) -> &'static str {
        "the audit log was changed outside ren3-issuer: keep this store file as evidence, \
         compare it with a backup or an earlier `audit export` to see what changed, and \
         find out who could write the store"
    }
}

/// A broken chain as an error, for a front end that fails on it: the
/// break, what before it holds and what to do, with a stable code
/// (`audit_head_mismatch` when only the saved head fails,
/// `audit_chain_broken` otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBroken(pub Break);

impl fmt::Display for ChainBroken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the audit log's chain is broken: {}; {}; {}",
            self.0,
            self.0.verified_before(),
            self.0.what_to_do()
        )
    }
}

impl std::error::Error for ChainBroken {}

/// The store no longer holds what was written: like a damaged store,
/// nothing the person at the command line did.
impl crate::error::Coded for ChainBroken {
    fn code(&self) -> &'static str {
        match self.0.problem {
            Problem::HeadMissing { .. }
            | Problem::HeadHashMissing { .. }
            | Problem::HeadChanged => "audit_head_mismatch",
            _ => "audit_chain_broken",
        }
    }

    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Internal
    }
}

/// Walks the whole log, oldest first, and checks each row's hash and its
/// link to the row before it; with `saved`, also that the saved head's row
/// is still there with the same hash. Stops at the first break.
pub fn verify(store: &Store, saved: Option<&SavedHead>) -> Result<Verdict, StoreError> {
    store.read(|conn| {
        let mut walk = Walk {
            rows: 0,
            prev: None,
            saved_found: false,
            saved,
        };
        let found = match store::visit_audit_rows(conn, |entry| walk.step(entry))? {
            ControlFlow::Break(found) => Some(found),
            ControlFlow::Continue(()) => walk.check_saved_head(),
        };
        let (id, at, problem) = match found {
            None => {
                return Ok(Verdict::Verified {
                    rows: walk.rows,
                    head: walk.head(),
                });
            }
            Some(Found::Row(entry)) => {
                let problem = diagnose_row(conn, &entry)?;
                (entry.id, Some(entry.at), problem)
            }
            Some(Found::Link { entry, predecessor }) => {
                let problem = diagnose_link(conn, &entry, predecessor)?;
                (entry.id, Some(entry.at), problem)
            }
            Some(Found::Problem(id, at, problem)) => (id, at, problem),
        };
        Ok(Verdict::Broken(Break {
            id,
            at,
            problem,
            verified_rows: walk.rows,
        }))
    })
}

/// What the walk stopped at, before the diagnosis that needs more queries.
enum Found {
    /// The row's columns do not give its hash.
    Row(Box<AuditEntry>),
    /// The row is whole, but chained to something other than the row
    /// before it, `predecessor` (`None`: it is the first).
    Link {
        entry: Box<AuditEntry>,
        predecessor: Option<i64>,
    },
    Problem(i64, Option<i64>, Problem),
}

struct Walk<'a> {
    /// The rows that verified.
    rows: u64,
    /// The last row that verified: its id and hash.
    prev: Option<(i64, ChainHash)>,
    saved_found: bool,
    saved: Option<&'a SavedHead>,
}

impl Walk<'_> {
    fn step(&mut self, entry: AuditEntry) -> ControlFlow<Found> {
        let hashes = (entry.prev_hash.as_deref().and_then(ChainHash::parse))
            .zip(entry.hash.as_deref().and_then(ChainHash::parse));
        let Some((prev_hash, hash)) = hashes else {
            return ControlFlow::Break(Found::Problem(entry.id, Some(entry.at), Problem::NoHash));
        };
        if link(&prev_hash, &Linked::of(&entry)) != hash {
            return ControlFlow::Break(Found::Row(Box::new(entry)));
        }
        let expected = self.prev.map_or(ChainHash::GENESIS, |(_, hash)| hash);
        if prev_hash != expected {
            let predecessor = self.prev.map(|(id, _)| id);
            return ControlFlow::Break(Found::Link {
                entry: Box::new(entry),
                predecessor,
            });
        }
        match self.saved {
            Some(SavedHead::Row(head)) if head.id == entry.id => {
                if head.hash != hash {
                    return ControlFlow::Break(Found::Problem(
                        entry.id,
                        Some(entry.at),
                        Problem::HeadChanged,
                    ));
                }
                self.saved_found = true;
            }
            Some(SavedHead::Hash(saved)) if *saved == hash => self.saved_found = true,
            _ => {}
        }
        self.rows += 1;
        self.prev = Some((entry.id, hash));
        ControlFlow::Continue(())
    }

    /// After a whole walk: the saved head's row must have been seen, unless
    /// it is the empty log's.
    fn check_saved_head(&self) -> Option<Found> {
        let last = self.prev.map(|(id, _)| id);
        let problem = match self.saved? {
            _ if self.saved_found => return None,
            SavedHead::Row(head) if head.id == 0 && head.hash == ChainHash::GENESIS => {
                return None;
            }
            SavedHead::Hash(hash) if *hash == ChainHash::GENESIS => return None,
            SavedHead::Row(head) => (head.id, Problem::HeadMissing { last }),
            SavedHead::Hash(_) => (last.unwrap_or(0), Problem::HeadHashMissing { last }),
        };
        Some(Found::Problem(problem.0, None, problem.1))
    }

    fn head(&self) -> Head {
        self.prev.map_or(
            Head {
                id: 0,
                hash: ChainHash::GENESIS,
            },
            |(id, hash)| Head { id, hash },
        )
    }
}

/// A row whose columns do not give its hash: moved from another id if
/// they give it under one, else edited.
fn diagnose_row(conn: &store::Db<'_>, entry: &AuditEntry) -> Result<Problem, StoreError> {
    let (Some(prev), Some(hash)) = (
        entry.prev_hash.as_deref().and_then(ChainHash::parse),
        entry.hash.as_deref().and_then(ChainHash::parse),
    ) else {
        return Ok(Problem::NoHash);
    };
    let highest = store::last_audit_link(conn)?.map_or(0, |(id, _)| id);
    // Only at a break, and at most once a verification: a hash for each id
    // the row could have been written with.
    let mut row = Linked::of(entry);
    for id in (1..=highest.saturating_add(1)).filter(|id| *id != entry.id) {
        row.id = id;
        if link(&prev, &row) == hash {
            return Ok(Problem::Moved { written_as: id });
        }
    }
    Ok(Problem::Edited)
}

/// A whole row chained to something other than the row before it.
fn diagnose_link(
    conn: &store::Db<'_>,
    entry: &AuditEntry,
    predecessor: Option<i64>,
) -> Result<Problem, StoreError> {
    let prev_hash = entry.prev_hash.as_deref().unwrap_or_default();
    if let Some(written_after) = store::audit_row_with_hash(conn, prev_hash)? {
        return Ok(Problem::Reordered { written_after });
    }
    Ok(match predecessor {
        None => Problem::Deleted {
            from: None,
            to: entry.id - 1,
        },
        Some(before) if before + 1 < entry.id => Problem::Deleted {
            from: Some(before + 1),
            to: entry.id - 1,
        },
        Some(before) => Problem::PredecessorChanged {
            predecessor: before,
        },
    })
}

#[cfg(test)]
mod tests;
