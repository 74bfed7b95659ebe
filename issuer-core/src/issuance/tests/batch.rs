//! Batch issuance: one transaction, verification on other threads in
//! request order, refusals among the rest, a batch run again, and the same
//! answers as single issuance.

use super::*;

fn audit_rows(t: &TestStore, outcome: &str) -> i64 {
    t.store
        .read(|conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM audit WHERE action = 'issue' AND result = ?1",
                [outcome],
                |row| row.get(0),
            )
            .map_err(StoreError::from)
        })
        .unwrap()
}

#[test]
fn batch_issues_every_request_in_one_transaction() {
    let mut t = TestStore::new();
    let key = t.license(3);
    let requests: Vec<String> = (1..=3)
        .map(|n| request(&key, &t.device(&key), &installation(n)))
        .collect();
    let commits = t.store.committed_writes();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
    assert_eq!(t.store.committed_writes(), commits + 1);

    let trust = t.trust_root();
    for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
        let issued = result.as_ref().unwrap();
        assert!(!issued.repeated, "{n}");
        assert_eq!(
            issued.payload.license.serial,
            NOW as u64 * SERIALS_PER_SECOND,
            "{n}"
        );
        assert_eq!(
            issued.request_id,
            VerifiedRequest::open(text).unwrap().request.request_id,
            "{n}"
        );
        assert!(
            VerifiedPayload::open(&issued.payload.token(), &trust).is_ok(),
            "{n}"
        );
    }
    let details = licenses::show(&t.store, &key).unwrap();
    assert!(details.devices.iter().all(|d| d.is_bound()));
    assert_eq!(details.issuances.len(), 3);
}

#[test]
fn a_large_batch_verified_on_other_threads_answers_in_request_order() {
    // Above the size at which helper threads verify (64), with damaged
    // requests scattered among good ones: every result is the answer to
    // the request at its own position.
    let mut t = TestStore::new();
    let key = t.license(200);
    let requests: Vec<String> = (0..150u8)
        .map(|n| {
            let text = request(&key, &t.device(&key), &installation(n));
            if n % 7 == 3 {
                text[..text.len() - 4].to_owned()
            } else {
                text
            }
        })
        .collect();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
    assert_eq!(results.len(), requests.len());
    for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
        match result {
            Ok(issued) => {
                assert_ne!(n % 7, 3, "{n}: a damaged request was issued");
                let expected = VerifiedRequest::open(text).unwrap();
                assert_eq!(issued.request_id, expected.request.request_id, "{n}");
                assert_eq!(issued.payload.license.request_hash, expected.hash(), "{n}");
            }
            Err(e) => {
                assert_eq!(n % 7, 3, "{n}: {e}");
                assert_eq!(e.code(), "token_damaged", "{n}");
            }
        }
    }
}

#[test]
fn batch_refuses_some_issues_the_rest_and_the_refused_leave_no_trace() {
    let mut t = TestStore::new();
    let key = t.license(2);
    let (first, second, third) = (t.device(&key), t.device(&key), t.device(&key));
    let stranger = LicenseKey::generate().unwrap();
    let good_one = request(&key, &first, &installation(1));
    let cases = [
        ("1. issued", good_one.clone(), None),
        (
            "2. unknown license",
            request(&stranger, &second, &installation(2)),
            Some("license_unknown"),
        ),
        (
            "3. damaged",
            good_one[..good_one.len() - 4].to_owned(),
            Some("token_damaged"),
        ),
        ("4. issued", request(&key, &second, &installation(2)), None),
        (
            "5. no seat left",
            request(&key, &third, &installation(3)),
            Some("no_free_seat"),
        ),
        (
            "6. the first device from another installation, within the batch",
            request(&key, &first, &installation(9)),
            Some("device_bound_to_other_installation"),
        ),
        ("7. the first again", good_one.clone(), None),
    ];
    let texts: Vec<&str> = cases.iter().map(|(_, text, _)| text.as_str()).collect();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();
    for ((name, _, expected), result) in cases.iter().zip(&results) {
        match (expected, result) {
            (None, Ok(_)) => {}
            (Some(code), Err(e)) => assert_eq!(e.code(), *code, "{name}: {e}"),
            (expected, result) => panic!("{name}: expected {expected:?}, got {result:?}"),
        }
    }
    assert!(
        results[6].as_ref().unwrap().repeated,
        "7. answered within the batch"
    );

    let details = licenses::show(&t.store, &key).unwrap();
    assert_eq!(details.issuances.len(), 2);
    assert!(!details.devices[2].is_bound());
    assert_eq!(
        details.devices[0].public_key,
        Some(installation(1).public_key())
    );
    assert_eq!(audit_rows(&t, "refused"), 4);
}

#[test]
fn a_batch_of_refused_requests_changes_nothing_but_the_audit_log() {
    let (mut t, key, device) = one_device(1);
    let stranger = LicenseKey::generate().unwrap();
    let texts = [
        request(&stranger, &device, &installation(1)),
        "not a request".to_owned(),
    ];
    let before = t.snapshot();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();
    assert!(results.iter().all(Result::is_err));
    assert_eq!(t.snapshot(), before);
    assert_eq!(audit_rows(&t, "refused"), 2);
    assert!(licenses::show(&t.store, &key).unwrap().issuances.is_empty());
}

#[test]
fn batch_run_again_returns_the_same_payloads_and_changes_nothing() {
    let mut t = TestStore::new();
    let key = t.license(2);
    let requests: Vec<String> = (1..=2)
        .map(|n| request(&key, &t.device(&key), &installation(n)))
        .collect();
    let first = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
    let before = t.snapshot();
    let again = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW + 60).unwrap();
    assert_eq!(t.snapshot(), before);
    for (one, two) in first.iter().zip(&again) {
        let (one, two) = (one.as_ref().unwrap(), two.as_ref().unwrap());
        assert!(two.repeated);
        assert_eq!(one.payload.token(), two.payload.token());
    }
}

#[test]
fn batch_and_single_issue_give_the_same_answer_to_the_same_request() {
    let (mut t, key, device) = one_device(1);
    let text = request(&key, &device, &installation(1));
    let single = issue(&mut t.store, &t.keys, &actor(), &text, NOW).unwrap();
    let batch = issue_batch(&mut t.store, &t.keys, &actor(), &[&text], NOW + 1).unwrap();
    let batch = batch[0].as_ref().unwrap();
    assert!(batch.repeated);
    assert_eq!(batch.payload.token(), single.payload.token());
}

#[test]
fn a_pipelined_batch_answers_as_one_request_at_a_time_would() {
    // A batch large enough for helper threads, where devices come back
    // within the signing window: new requests from the same
    // installation (the next serial), the very same request again (its
    // stored answer), and devices beyond the seats (refused). A model
    // of one-at-a-time issuance predicts every answer.
    const SEATS: usize = 30;
    let mut t = TestStore::new();
    let key = t.license(SEATS as u32);
    let devices: Vec<DeviceId> = (0..40).map(|_| t.device(&key)).collect();
    let mut made: Vec<Vec<String>> = vec![Vec::new(); devices.len()];
    let mut requests = Vec::new();
    for i in 0..240usize {
        let d = (i * 7 + i / 40) % devices.len();
        let text = match made[d].last() {
            Some(earlier) if i % 5 == 4 => earlier.clone(),
            _ => {
                let fresh = request(&key, &devices[d], &installation(d as u8));
                made[d].push(fresh.clone());
                fresh
            }
        };
        requests.push((d, text));
    }
    let texts: Vec<&str> = requests.iter().map(|(_, text)| text.as_str()).collect();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &texts, NOW).unwrap();

    // The model: the first SEATS devices to ask are bound; each new
    // request of a bound device takes the next serial; a request asked
    // again gets its first answer's serial.
    let mut bound: Vec<Option<u64>> = vec![None; devices.len()];
    let mut answered: std::collections::HashMap<&str, u64> = Default::default();
    let mut stored = 0;
    for (n, ((d, text), result)) in requests.iter().zip(&results).enumerate() {
        let seats_taken = bound.iter().filter(|b| b.is_some()).count();
        match (answered.get(text.as_str()), bound[*d], result) {
            (Some(serial), _, Ok(issued)) => {
                assert!(issued.repeated, "{n}: asked again, answered anew");
                assert_eq!(issued.payload.license.serial, *serial, "{n}");
            }
            (None, Some(last), Ok(issued)) => {
                assert!(!issued.repeated, "{n}");
                assert_eq!(issued.payload.license.serial, last + 1, "{n}");
                bound[*d] = Some(last + 1);
                answered.insert(text, last + 1);
                stored += 1;
            }
            (None, None, Ok(issued)) if seats_taken < SEATS => {
                assert!(!issued.repeated, "{n}");
                let first = NOW as u64 * SERIALS_PER_SECOND;
                assert_eq!(issued.payload.license.serial, first, "{n}");
                bound[*d] = Some(first);
                answered.insert(text, first);
                stored += 1;
            }
            (None, None, Err(e)) if seats_taken == SEATS => {
                assert_eq!(e.code(), "no_free_seat", "{n}");
            }
            (_, _, other) => panic!("{n}: the model did not expect {other:?}"),
        }
    }
    assert!(
        stored > 100 && answered.len() < requests.len(),
        "the mix is varied"
    );

    // Every new answer is stored as it was returned, and nothing else.
    let rows: Vec<(i64, String)> = t
        .store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT serial, payload FROM issuances ORDER BY id")?;
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, rusqlite::Error>>()?;
            Ok::<_, StoreError>(rows)
        })
        .unwrap();
    let new_answers: Vec<(i64, String)> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|issued| !issued.repeated)
        .map(|issued| (issued.payload.license.serial as i64, issued.payload.token()))
        .collect();
    assert_eq!(rows, new_answers);
    assert_eq!(
        audit_rows(&t, "ok") + audit_rows(&t, "refused"),
        requests.len() as i64
    );
}

#[test]
fn batch_verifies_requests_in_parallel_and_keeps_their_order() {
    // Enough requests that verification is split over threads.
    let mut t = TestStore::new();
    let key = t.license(100);
    let requests: Vec<String> = (0..100)
        .map(|n| request(&key, &t.device(&key), &installation(n)))
        .collect();
    let results = issue_batch(&mut t.store, &t.keys, &actor(), &requests, NOW).unwrap();
    for (n, (text, result)) in requests.iter().zip(&results).enumerate() {
        let issued = result.as_ref().unwrap();
        assert_eq!(
            issued.payload.license.request_hash,
            VerifiedRequest::open(text).unwrap().hash(),
            "{n}"
        );
    }
}
