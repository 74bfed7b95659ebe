//! Inputs shared by the benchmarks: one license request, the payload that
//! answers it, and the same claims as a JWT, all made from fixed seeds.
//!
//! Every payload here is signed under the BENCH-ONLY root ([`bench_root_key`]),
//! whose seed is public: a client that accepts them (the `hot_path` bench,
//! `http-prepare` and `bench/http.sh`) must be built pinned to it, with
//! `REN3_TRUST_ROOT=$PWD/bench/bench-root.pub` ([`client_pinning_problem`]).

#![allow(clippy::expect_used)]

pub mod fill;

use std::collections::BTreeMap;

use ren3_shared::binary::{self, Bytes};
use ren3_shared::{
    Certificate, ClockPolicy, DeviceId, DeviceKey, IssuerKey, License, LicenseKey, LicenseRequest,
    PayloadSigner, Product, RevocationList, RevocationListBody, RootKey, TrustRoot,
    VerifiedRequest,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

pub const NOW: i64 = 1_800_000_000;

/// What the BENCH-ONLY root's seed is the SHA-256 of. It is public, like
/// the TEST-ONLY root's of `fixtures/`: never trust this root outside
/// benchmarks.
pub const BENCH_ROOT_SEED_PHRASE: &str =
    "ren3 BENCH-ONLY root key: never trust it outside benchmarks";

/// The BENCH-ONLY root's public file ([`TrustRoot::to_public_file`]), the
/// one benchmark clients are built pinned to.
pub const BENCH_ROOT_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench-root.pub");

/// The start of the window every BENCH-ONLY certificate covers; it ends at
/// the end of representable time.
pub const CERTIFIED_FROM: i64 = 1_700_000_000;

/// The BENCH-ONLY root key.
pub fn bench_root_key() -> RootKey {
    let seed: [u8; 32] = Sha256::digest(BENCH_ROOT_SEED_PHRASE.as_bytes()).into();
    RootKey::from_seed(&seed)
}

/// The BENCH-ONLY root's public key: what `bench/bench-root.pub` holds.
pub fn bench_root() -> TrustRoot {
    bench_root_key().trust_root()
}

/// Revocation list version 1 of `root`, revoking nothing.
pub fn first_revocations(root: &RootKey) -> RevocationList {
    root.sign_revocations(RevocationListBody {
        version: 1,
        issued_at: CERTIFIED_FROM,
        revoked: Vec::new(),
    })
    .expect("an empty list is valid")
}

/// `issuer`'s certificate by `root`, from [`CERTIFIED_FROM`] to the end of
/// representable time.
pub fn certify(root: &RootKey, issuer: &IssuerKey) -> Certificate {
    let request = issuer
        .certification_request(CERTIFIED_FROM, ren3_shared::timestamp::MAX, CERTIFIED_FROM)
        .expect("a valid certification request");
    root.certify(&request, CERTIFIED_FROM)
        .expect("the root certifies it")
}

/// `issuer`, certified by the BENCH-ONLY root and carrying its revocation
/// list version 1: payloads a client pinned to that root accepts.
pub fn bench_signer(issuer: IssuerKey) -> PayloadSigner {
    let root = bench_root_key();
    let certificate = certify(&root, &issuer);
    PayloadSigner::new(issuer, certificate, first_revocations(&root))
        .expect("a certified, unrevoked key")
}

/// Why a client built into this process would refuse the BENCH-ONLY
/// payloads, if it would: `ren3-client` trusts only the root compiled into
/// it (`REN3_TRUST_ROOT` at build time). `None` when it is pinned to the
/// BENCH-ONLY root.
pub fn client_pinning_problem() -> Option<String> {
    let expected = bench_root();
    let pinned = match ren3_client::Config::from_lookup(|_| None) {
        Ok(config) => *config.trust().root(),
        Err(e) => return Some(format!("the client's configuration fails: {e}")),
    };
    (pinned != expected).then(|| {
        format!(
            "ren3-client is built pinned to the root with fingerprint {}{}, not to the \
             BENCH-ONLY root ({}) that signs the benchmarks' payloads, so it would refuse \
             them. Run the benchmarks with the client pinned to the BENCH-ONLY root:\n    \
             REN3_TRUST_ROOT=$PWD/bench/bench-root.pub cargo bench -p ren3-bench\n\
             from the workspace's directory ({BENCH_ROOT_FILE}); bench/http.sh sets it \
             itself for the builds it makes",
            pinned.fingerprint(),
            if pinned.is_test_only() {
                " (the TEST-ONLY root of fixtures/, the workspace's default)"
            } else {
                ""
            },
            expected.fingerprint(),
        )
    })
}

/// Panics with [`client_pinning_problem`]'s explanation unless the client
/// is pinned to the BENCH-ONLY root: the first call of every benchmark
/// that has the client verify BENCH-ONLY payloads.
pub fn require_client_pinned_to_bench_root() {
    if let Some(problem) = client_pinning_problem() {
        panic!("{problem}");
    }
}

/// Everything a benchmark needs, made once.
#[derive(Debug)]
pub struct Inputs {
    /// The BENCH-ONLY issuer key with its certificate and revocation list.
    pub signer: PayloadSigner,
    /// The BENCH-ONLY root, which the payload chains to.
    pub root: TrustRoot,
    pub request_token: String,
    pub payload_token: String,
    pub license: License,
}

/// The raw parts of a token: the signed message and the signature.
pub fn raw_parts(token: &str) -> (Vec<u8>, [u8; 64]) {
    let parts: Vec<&str> = token.split('.').collect();
    let message = binary::decode(parts[1]).expect("a token has a message");
    let signature = binary::decode(parts[2]).expect("a token has a signature");
    (message, signature.try_into().expect("64-byte signature"))
}

/// The payload the issuer signs for `request`, with realistic terms.
pub fn terms_for(request: &VerifiedRequest, serial: u64) -> License {
    License {
        customer: "ACME Logistics GmbH".into(),
        features: vec!["export".into(), "ingest".into(), "reports".into()],
        limits: BTreeMap::from([("max-sources".into(), 25), ("max-users".into(), 100)]),
        issued_at: NOW,
        not_before: NOW,
        expires_at: Some(NOW + 365 * 86_400),
        grace_seconds: 14 * 86_400,
        clock_policy: ClockPolicy::Enforcing,
        serial,
        license_key_fingerprint: request.request.license_key_fingerprint,
        client_device_id: request.request.client_device_id.clone(),
        device_public_key: request.device_public_key.into(),
        request_hash: request.hash(),
    }
}

impl Inputs {
    /// The seed of the BENCH-ONLY issuer key.
    pub const ISSUER_SEED: [u8; 32] = [1; 32];

    pub fn new() -> Self {
        let signer = bench_signer(IssuerKey::from_seed(&Self::ISSUER_SEED));
        let device = DeviceKey::from_seed(&[2; 32]);
        let key = LicenseKey::parse("REN3K1-TESTK-EY0DE-M0ABC-DEFGH-2345Q").expect("fixed key");
        let device_id = DeviceId::parse("REN3D1-TEST0-DEV1C-E0000-00002").expect("fixed id");
        let product = Product {
            name: "ren3-ingestor".into(),
            version: "1.0.0".into(),
        };
        let mut request = LicenseRequest::new(device_id, &key, product, NOW).expect("OS random");
        request.request_id = Bytes([7; 16]);
        let request = request.sign(&device).expect("valid request");
        let license = terms_for(&request, 1);
        let payload_token = signer
            .sign_payload(&license)
            .expect("valid payload")
            .token();
        Self {
            signer,
            root: bench_root(),
            request_token: request.token(),
            payload_token,
            license,
        }
    }
}

impl Default for Inputs {
    fn default() -> Self {
        Self::new()
    }
}

/// The payload's claims as a JWT carries them, for the jsonwebtoken
/// comparison: the same fields, under the names RFC 7519 gives the ones it
/// has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtClaims {
    pub sub: String,
    pub customer: String,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, u64>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub grace_seconds: u64,
    pub clock_policy: String,
    pub serial: u64,
    pub license_key_fingerprint: String,
    pub device_public_key: String,
    pub request_hash: String,
}

impl JwtClaims {
    pub fn of(license: &License) -> Self {
        Self {
            sub: license.client_device_id.to_string(),
            customer: license.customer.clone(),
            features: license.features.clone(),
            limits: license.limits.clone(),
            iat: license.issued_at,
            nbf: license.not_before,
            exp: license.expires_at.unwrap_or(i64::MAX),
            grace_seconds: license.grace_seconds,
            clock_policy: license.clock_policy.as_str().into(),
            serial: license.serial,
            license_key_fingerprint: license.license_key_fingerprint.to_string(),
            device_public_key: license.device_public_key.to_string(),
            request_hash: license.request_hash.to_string(),
        }
    }
}

/// A license request's claims as a JWT would carry them, for a
/// like-for-like issuance comparison: a JWT issuer must verify the
/// device-signed request too before it signs the payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JwtRequestClaims {
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub license_key_fingerprint: String,
    pub product: String,
    pub version: String,
    pub device_public_key: String,
}

impl JwtRequestClaims {
    pub fn of(request: &VerifiedRequest) -> Self {
        Self {
            sub: request.request.client_device_id.to_string(),
            jti: request.request.request_id.to_string(),
            iat: request.request.created_at,
            license_key_fingerprint: request.request.license_key_fingerprint.to_string(),
            product: request.request.product.name.clone(),
            version: request.request.product.version.clone(),
            device_public_key: request.device_public_key.to_string(),
        }
    }
}

/// PKCS#8 v1 DER of an Ed25519 private key (RFC 8410): a fixed prefix and
/// the 32-byte seed. jsonwebtoken reads keys only in this form.
pub fn ed25519_pkcs8_der(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

/// Serves `app` on `listen` (port 0: any free port) and prints
/// `listening on http://ADDRESS` first, as `ren3-client` does, so that
/// `bench/http.sh` learns the address the same way from every server.
pub async fn serve_announced(
    listen: std::net::SocketAddr,
    app: axum::Router,
) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let listener = ren3_server::bind(listen).await?;
    axum::serve(listener, app)
        .await
        .context("the HTTP server failed")
}

/// The arguments of the profiling examples (`examples/profile_*.rs`): a
/// number of rounds (200 without one), then `floor` to run the floor the
/// path is judged against instead of the path.
pub fn profile_args() -> (usize, bool) {
    let mut args = std::env::args().skip(1);
    let rounds = args
        .next()
        .map(|arg| {
            arg.parse()
                .expect("the first argument is a number of rounds")
        })
        .unwrap_or(200);
    (rounds, args.next().as_deref() == Some("floor"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ren3_shared::VerifiedPayload;

    use super::*;

    #[test]
    fn the_committed_public_file_is_the_bench_only_root() {
        let text = std::fs::read_to_string(BENCH_ROOT_FILE).expect("bench/bench-root.pub");
        let root = bench_root();
        assert_eq!(
            TrustRoot::parse_public_file(&text),
            Ok(root),
            "bench/bench-root.pub is not the public file of the root bench_root() makes; \
             write it again from `bench_root().to_public_file()`"
        );
        assert!(text.ends_with(&root.to_public_file()));
        assert!(!root.is_test_only());
    }

    #[test]
    fn the_benchmark_payload_verifies_under_the_bench_only_root_alone() {
        let inputs = Inputs::new();
        let payload = VerifiedPayload::open(&inputs.payload_token, &inputs.root).unwrap();
        assert_eq!(payload.license, inputs.license);
        let other = RootKey::from_seed(&[0x66; 32]).trust_root();
        let err = VerifiedPayload::open(&inputs.payload_token, &other).unwrap_err();
        assert_eq!(err.code(), "untrusted_root", "{err}");
    }

    #[test]
    fn a_client_pinned_elsewhere_is_explained() {
        // The workspace's own builds pin the TEST-ONLY root; a bench run
        // pins the BENCH-ONLY root. Either way the answer is consistent.
        let pinned_to_bench = ren3_client::Config::from_lookup(|_| None)
            .unwrap()
            .trust()
            .root()
            == &bench_root();
        match client_pinning_problem() {
            None => assert!(pinned_to_bench),
            Some(problem) => {
                assert!(!pinned_to_bench);
                assert!(problem.contains("REN3_TRUST_ROOT=$PWD/bench/bench-root.pub"));
            }
        }
    }
}
