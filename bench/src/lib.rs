//! Inputs shared by the benchmarks: one license request, the payload that
//! answers it, and the same claims as a JWT, all made from fixed seeds.

#![allow(clippy::expect_used)]

pub mod fill;

use std::collections::BTreeMap;

use ren3_shared::binary::{self, Bytes};
use ren3_shared::{
    ClockPolicy, DeviceId, DeviceKey, IssuerKey, License, LicenseKey, LicenseRequest, Product,
    TrustedKeys, VerifiedRequest,
};
use serde::{Deserialize, Serialize};

pub const NOW: i64 = 1_800_000_000;

/// Everything a benchmark needs, made once.
#[derive(Debug)]
pub struct Inputs {
    pub issuer: IssuerKey,
    pub trust: TrustedKeys,
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
    pub fn new() -> Self {
        let issuer = IssuerKey::from_seed(&[1; 32]);
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
        let payload_token = issuer
            .sign_payload(&license)
            .expect("valid payload")
            .token();
        let trust =
            TrustedKeys::new(vec![issuer.trusted_key(NOW - 86_400, None)]).expect("one key");
        Self {
            issuer,
            trust,
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
    use std::io::Write as _;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    drop(stdout);
    axum::serve(listener, app)
        .await
        .context("the HTTP server failed")
}
