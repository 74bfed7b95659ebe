//! Batch issuance of 10,000 requests and its cryptographic floor, set up
//! once and shared by the criterion bench (`batch_issue`) and the paired
//! ratios (`paired`), so that both time exactly the same work.
//!
//! The batch goes through the library as `ren3-issuer issue` does: one
//! call, one transaction, every check and write of a single issuance. The
//! floor is a raw `verify_strict` of each request and a raw `sign` of a
//! payload of the same size (its certificate and revocation list lines
//! included), one after the other on one core.

use std::hint::black_box;
use std::os::unix::fs::DirBuilderExt as _;

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use ren3_bench::fill::{self, FillSpec};
use ren3_bench::{NOW, raw_parts, terms_for};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::keystore::KeyStore;
use ren3_issuer_core::store::Store;
use ren3_issuer_core::{IssueError, Issued, StorePaths, issuance, setup};
use ren3_shared::{PublicKey, VerifiedRequest};

pub const REQUESTS: usize = 10_000;
const LICENSES: usize = 100;

/// A store of 100 licenses of 100 unbound devices each, and the first
/// request of every device.
pub struct Batch {
    template: tempfile::TempDir,
    requests: Vec<String>,
    /// Per request: the device key, the signed message and its signature,
    /// and the bytes of a payload answering it.
    floor_inputs: Vec<(PublicKey, Vec<u8>, Signature, Vec<u8>)>,
    signing: SigningKey,
}

/// A copy of the batch's store, in a directory of its own, that no batch
/// has issued from yet.
pub struct Fresh {
    _dir: tempfile::TempDir,
    store: Store,
    keys: KeyStore,
}

impl Batch {
    pub fn new() -> Self {
        let template = tempfile::tempdir().unwrap();
        let licenses = fill::fill(
            &template.path().join("issuer.db"),
            FillSpec {
                licenses: LICENSES,
                devices_per_license: REQUESTS / LICENSES,
                issue: false,
                varied: false,
                now: NOW,
            },
            true,
        )
        .unwrap();
        let requests = fill::first_requests(&licenses, NOW).unwrap();
        assert_eq!(requests.len(), REQUESTS);

        let paths = StorePaths::new(template.path().join("issuer.db"), None);
        // The chain the store's issuance signs with, and its key's seed for
        // the floor's raw `sign`.
        let signer = fill::store_signer(&paths).unwrap();
        let issuer = setup::open_keys(&paths)
            .unwrap()
            .load(&signer.key_id())
            .unwrap();
        let floor_inputs = requests
            .iter()
            .map(|token| {
                let (message, signature) = raw_parts(token);
                let request = VerifiedRequest::open(token).unwrap();
                let payload = signer.sign_payload(&terms_for(&request, 1)).unwrap();
                let (payload_message, _) = raw_parts(&payload.token());
                (
                    request.device_public_key,
                    message,
                    Signature::from_bytes(&signature),
                    payload_message,
                )
            })
            .collect();
        let signing = SigningKey::from_bytes(issuer.seed());
        Self {
            template,
            requests,
            floor_inputs,
            signing,
        }
    }

    /// The floor: verify every request, sign every payload.
    pub fn floor(&self) {
        for (device_key, message, signature, payload) in &self.floor_inputs {
            device_key
                .verifying_key()
                .verify_strict(black_box(message), signature)
                .unwrap();
            black_box(self.signing.sign(black_box(payload)));
        }
    }

    /// A copy of the filled store, so every measured batch binds unbound
    /// devices, as a first issuance does.
    pub fn fresh(&self) -> Fresh {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths::new(dir.path().join("issuer.db"), None);
        std::fs::copy(self.template.path().join("issuer.db"), &paths.db).unwrap();
        // The key directory must be private, as `init` makes it.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&paths.keys_dir)
            .unwrap();
        for entry in std::fs::read_dir(self.template.path().join("issuer.db.keys")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), paths.keys_dir.join(entry.file_name())).unwrap();
        }
        let store = setup::open_store(&paths).unwrap();
        let keys = setup::open_keys(&paths).unwrap();
        Fresh {
            _dir: dir,
            store,
            keys,
        }
    }

    /// Issues every request in one batch into `fresh`, and checks that each
    /// got a new payload. The results are returned, so that dropping them
    /// is not timed.
    pub fn issue(&self, fresh: &mut Fresh) -> Vec<Result<Issued, IssueError>> {
        let results = issuance::issue_batch(
            &mut fresh.store,
            &fresh.keys,
            &Actor::cli(),
            &self.requests,
            NOW + 60,
        )
        .unwrap();
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(issued) if !issued.repeated))
        );
        results
    }
}
