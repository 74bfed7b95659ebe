use rusqlite::params;

use super::*;
use crate::audit::{self, Action, Actor, NewEntry, Outcome};
use crate::testing::{NOW, TestStore};

/// A store whose log holds rows 1 to 8: `init`'s three and five more.
fn store_with_eight_rows() -> TestStore {
    let mut t = TestStore::new();
    let alice = Actor::console("alice");
    for i in 0..5 {
        let entry = NewEntry {
            actor: &alice,
            action: Action::Issue,
            subject: format!("REN3D1-{i}"),
            outcome: Outcome::Ok,
            detail: format!("serial {i}"),
        };
        audit::record(&mut t.store, &entry, NOW + i).unwrap();
    }
    assert_eq!(head(&t.store).unwrap().id, 8);
    t
}

fn sql(t: &mut TestStore, statements: &str) {
    t.store
        .write(|tx| tx.execute_batch(statements).map_err(StoreError::from))
        .unwrap();
}

/// Gives every row from `from` on the hash it would have had: what
/// someone who knows the scheme does after an edit.
fn rehash_from(t: &mut TestStore, from: i64) {
    let rows = t
        .store
        .read(|conn| {
            let mut rows = Vec::new();
            let _: ControlFlow<()> = store::visit_audit_rows(conn, |e| {
                rows.push(e);
                ControlFlow::<()>::Continue(())
            })?;
            Ok::<_, StoreError>(rows)
        })
        .unwrap();
    let mut prev = ChainHash::GENESIS;
    t.store
        .write(|tx| {
            for row in &rows {
                if row.id >= from {
                    let hash = link(&prev, &Linked::of(row));
                    tx.execute(
                        "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE id = ?3",
                        params![prev.to_string(), hash.to_string(), row.id],
                    )?;
                    prev = hash;
                } else {
                    prev = ChainHash::parse(row.hash.as_deref().unwrap()).unwrap();
                }
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

fn broken(t: &TestStore, saved: Option<&SavedHead>) -> (i64, Problem) {
    match verify(&t.store, saved).unwrap() {
        Verdict::Broken(b) => (b.id, b.problem),
        verified => panic!("expected a break, got {verified:?}"),
    }
}

/// The encoding, pinned by a value computed independently (Python's
/// hashlib over the encoding the module documents).
#[test]
fn the_hash_is_sha256_over_the_documented_encoding() {
    let first = link(
        &ChainHash::GENESIS,
        &Linked {
            id: 1,
            at: 1_700_000_000,
            actor: "cli:ops",
            action: "login",
            subject: "alice",
            result: "ok",
            detail: "détail",
        },
    );
    assert_eq!(
        first.to_string(),
        "9e0fe88cc9175fd89803d84c6091e267e0833a1cc63575dd374d36beb8c7f88d"
    );
    let second = link(
        &first,
        &Linked {
            id: 2,
            at: 1_700_000_001,
            actor: "console:alice (admin)",
            action: "issue",
            subject: "REN3D1-X",
            result: "refused",
            detail: "",
        },
    );
    assert_eq!(
        second.to_string(),
        "da7bafa66eb564e021cbc42cc8418a441813fd6116a64141afca8283f54b3525"
    );
}

#[test]
fn every_field_and_every_boundary_between_fields_changes_the_hash() {
    let base = Linked {
        id: 1,
        at: 2,
        actor: "ab",
        action: "c",
        subject: "s",
        result: "ok",
        detail: "d",
    };
    let h = |row: &Linked<'_>| link(&ChainHash::GENESIS, row);
    let other_prev = link(&ChainHash::GENESIS, &base);
    let variants = [
        ("1. previous hash", link(&other_prev, &base)),
        ("2. id", h(&Linked { id: 2, ..base })),
        ("3. at", h(&Linked { at: 3, ..base })),
        (
            "4. actor",
            h(&Linked {
                actor: "aB",
                ..base
            }),
        ),
        (
            "5. a byte moved across a boundary",
            h(&Linked {
                actor: "a",
                action: "bc",
                ..base
            }),
        ),
        (
            "6. subject",
            h(&Linked {
                subject: "t",
                ..base
            }),
        ),
        (
            "7. result",
            h(&Linked {
                result: "refused",
                ..base
            }),
        ),
        ("8. detail", h(&Linked { detail: "", ..base })),
    ];
    for (name, hash) in variants {
        assert_ne!(hash, h(&base), "{name}");
    }
}

#[test]
fn a_written_log_verifies_and_its_head_is_the_newest_row() {
    let t = store_with_eight_rows();
    let head = head(&t.store).unwrap();
    assert_eq!(
        verify(&t.store, Some(&SavedHead::Row(head))).unwrap(),
        Verdict::Verified { rows: 8, head }
    );
    let text = head.to_string();
    assert_eq!(Head::parse(&text), Some(SavedHead::Row(head)));
    assert_eq!(
        Head::parse(&text.to_uppercase()),
        Some(SavedHead::Row(head)),
        "a head is read in either case"
    );
    assert_eq!(
        Head::parse(&head.hash.to_string()),
        Some(SavedHead::Hash(head.hash))
    );
    for bad in ["", "8", "8:abc", "x:00", "-1:".to_owned().as_str()] {
        assert_eq!(Head::parse(bad), None, "{bad:?}");
    }
}

/// Each change made with SQL directly is caught at the first row it
/// breaks, and named for what it is.
#[test]
fn verify_names_the_first_row_an_edit_deletion_or_reordering_breaks() {
    type Tamper = fn(&mut TestStore);
    let cases: [(&str, Tamper, i64, Problem); 8] = [
        (
            "1. a detail edited",
            |t| sql(t, "UPDATE audit SET detail = 'nothing' WHERE id = 5"),
            5,
            Problem::Edited,
        ),
        (
            "2. a time edited",
            |t| sql(t, "UPDATE audit SET at = at - 86400 WHERE id = 5"),
            5,
            Problem::Edited,
        ),
        (
            "3. a hash removed",
            |t| sql(t, "UPDATE audit SET hash = NULL WHERE id = 5"),
            5,
            Problem::NoHash,
        ),
        (
            "4. a row deleted",
            |t| sql(t, "DELETE FROM audit WHERE id = 5"),
            6,
            Problem::Deleted {
                from: Some(5),
                to: 5,
            },
        ),
        (
            "5. the first rows deleted",
            |t| sql(t, "DELETE FROM audit WHERE id <= 2"),
            3,
            Problem::Deleted { from: None, to: 2 },
        ),
        (
            "6. two rows swapped",
            |t| {
                sql(
                    t,
                    "UPDATE audit SET id = -6 WHERE id = 6;
                     UPDATE audit SET id = 6 WHERE id = 4;
                     UPDATE audit SET id = 4 WHERE id = -6;",
                )
            },
            4,
            Problem::Moved { written_as: 6 },
        ),
        (
            "7. a row moved to the end",
            |t| sql(t, "UPDATE audit SET id = 100 WHERE id = 5"),
            6,
            Problem::Reordered { written_after: 100 },
        ),
        (
            "8. a row edited and its own hash recomputed",
            |t| {
                sql(t, "UPDATE audit SET detail = 'nothing' WHERE id = 5");
                let row = t
                    .store
                    .read(|conn| {
                        let mut found = None;
                        let _: ControlFlow<()> = store::visit_audit_rows(conn, |e| {
                            if e.id == 5 {
                                found = Some(e);
                                return ControlFlow::Break(());
                            }
                            ControlFlow::Continue(())
                        })?;
                        Ok::<_, StoreError>(found.unwrap())
                    })
                    .unwrap();
                let prev = ChainHash::parse(row.prev_hash.as_deref().unwrap()).unwrap();
                let hash = link(&prev, &Linked::of(&row)).to_string();
                sql(t, &format!("UPDATE audit SET hash = '{hash}' WHERE id = 5"));
            },
            6,
            Problem::PredecessorChanged { predecessor: 5 },
        ),
    ];
    for (name, tamper, id, problem) in cases {
        let mut t = store_with_eight_rows();
        tamper(&mut t);
        assert_eq!(broken(&t, None), (id, problem), "{name}");
    }
}

#[test]
fn only_a_saved_head_catches_a_truncated_tail_or_a_rewritten_log() {
    let mut t = store_with_eight_rows();
    let saved = SavedHead::Row(head(&t.store).unwrap());
    sql(&mut t, "DELETE FROM audit WHERE id > 6");
    assert!(matches!(
        verify(&t.store, None).unwrap(),
        Verdict::Verified { rows: 6, .. }
    ));
    assert_eq!(
        broken(&t, Some(&saved)),
        (8, Problem::HeadMissing { last: Some(6) })
    );
    let SavedHead::Row(row) = saved else {
        unreachable!()
    };
    assert_eq!(
        broken(&t, Some(&SavedHead::Hash(row.hash))),
        (6, Problem::HeadHashMissing { last: Some(6) })
    );

    let mut t = store_with_eight_rows();
    let saved = SavedHead::Row(head(&t.store).unwrap());
    sql(&mut t, "UPDATE audit SET detail = 'nothing' WHERE id = 2");
    rehash_from(&mut t, 2);
    assert!(matches!(
        verify(&t.store, None).unwrap(),
        Verdict::Verified { rows: 8, .. }
    ));
    assert_eq!(broken(&t, Some(&saved)), (8, Problem::HeadChanged));
}

#[test]
fn rows_written_after_a_saved_head_keep_it_valid() {
    let mut t = store_with_eight_rows();
    let saved = SavedHead::Row(head(&t.store).unwrap());
    let entry = NewEntry {
        actor: &Actor::console("bob"),
        action: Action::Login,
        subject: "bob".to_owned(),
        outcome: Outcome::Ok,
        detail: String::new(),
    };
    audit::record(&mut t.store, &entry, NOW).unwrap();
    assert!(matches!(
        verify(&t.store, Some(&saved)).unwrap(),
        Verdict::Verified { rows: 9, .. }
    ));
    let empty = SavedHead::Row(Head {
        id: 0,
        hash: ChainHash::GENESIS,
    });
    assert!(matches!(
        verify(&t.store, Some(&empty)).unwrap(),
        Verdict::Verified { .. }
    ));
}
