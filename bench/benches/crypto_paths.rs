//! Verification and issuance against the cryptographic floor (raw
//! ed25519-dalek over the same bytes) and against jsonwebtoken's EdDSA, in
//! the same run. `bench/report.py` turns the results into ratios.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ren3_bench::{
    Inputs, JwtClaims, JwtRequestClaims, NOW, ed25519_pkcs8_der, raw_parts, terms_for,
};
use ren3_shared::payload::Window;
use ren3_shared::{VerifiedPayload, VerifiedRequest};

fn payload_verification(c: &mut Criterion) {
    let inputs = Inputs::new();
    let (message, signature) = raw_parts(&inputs.payload_token);
    let public = inputs.issuer.public_key();
    let signature = Signature::from_bytes(&signature);

    // jsonwebtoken checks nbf and exp against the system clock, so its
    // claims are shifted to now; the work is the same as ours at NOW.
    let mut claims = JwtClaims::of(&inputs.license);
    let now = ren3_shared::timestamp::now();
    (claims.iat, claims.nbf, claims.exp) = (now - 60, now - 60, now + 365 * 86_400);
    let encoding = EncodingKey::from_ed_der(&ed25519_pkcs8_der(inputs.issuer.seed()));
    let jwt = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &encoding).unwrap();
    let decoding = DecodingKey::from_ed_der(&public.to_bytes());
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_nbf = true;
    validation.validate_exp = true;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<JwtClaims>(&jwt, &decoding, &validation).expect("the JWT verifies");

    let mut group = c.benchmark_group("payload_verification");
    group.bench_function("floor_verify_strict", |b| {
        b.iter(|| {
            public
                .verifying_key()
                .verify_strict(black_box(&message), black_box(&signature))
                .unwrap()
        })
    });
    group.bench_function("ren3_open_and_check", |b| {
        b.iter(|| {
            let payload =
                VerifiedPayload::open(black_box(&inputs.payload_token), &inputs.trust).unwrap();
            assert_eq!(payload.license.window_at(NOW), Window::Valid);
            payload
        })
    });
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<JwtClaims>(black_box(&jwt), &decoding, &validation).unwrap()
        })
    });
    group.finish();
}

fn issue_one(c: &mut Criterion) {
    let inputs = Inputs::new();
    let (request_message, request_signature) = raw_parts(&inputs.request_token);
    let request = VerifiedRequest::open(&inputs.request_token).unwrap();
    let device_key = request.device_public_key;
    let request_signature = Signature::from_bytes(&request_signature);
    let (payload_message, _) = raw_parts(&inputs.payload_token);
    let signing = ed25519_dalek::SigningKey::from_bytes(inputs.issuer.seed());

    let claims = JwtClaims::of(&inputs.license);
    let encoding = EncodingKey::from_ed_der(&ed25519_pkcs8_der(inputs.issuer.seed()));
    let header = Header::new(Algorithm::EdDSA);

    // Like for like: a JWT issuer verifies the device-signed request (its
    // key taken from the request, as ours is) before it signs the payload.
    let device_seed = [2; 32];
    let device_public = ed25519_dalek::SigningKey::from_bytes(&device_seed)
        .verifying_key()
        .to_bytes();
    let request_jwt = jsonwebtoken::encode(
        &header,
        &JwtRequestClaims::of(&request),
        &EncodingKey::from_ed_der(&ed25519_pkcs8_der(&device_seed)),
    )
    .unwrap();
    let mut request_validation = Validation::new(Algorithm::EdDSA);
    request_validation.validate_exp = false;
    request_validation.required_spec_claims.clear();
    jsonwebtoken::decode::<JwtRequestClaims>(
        &request_jwt,
        &DecodingKey::from_ed_der(&device_public),
        &request_validation,
    )
    .expect("the request JWT verifies");

    let mut group = c.benchmark_group("issue_one");
    group.bench_function("floor_verify_strict_and_sign", |b| {
        b.iter(|| {
            device_key
                .verifying_key()
                .verify_strict(black_box(&request_message), &request_signature)
                .unwrap();
            signing.sign(black_box(&payload_message))
        })
    });
    group.bench_function("ren3_verify_sign_encode", |b| {
        b.iter(|| {
            let request = VerifiedRequest::open(black_box(&inputs.request_token)).unwrap();
            inputs
                .issuer
                .sign_payload(&terms_for(&request, 1))
                .unwrap()
                .token()
        })
    });
    group.bench_function("jsonwebtoken_encode", |b| {
        b.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &encoding).unwrap())
    });
    group.bench_function("jsonwebtoken_decode_request_and_encode", |b| {
        b.iter(|| {
            let decoding = DecodingKey::from_ed_der(black_box(&device_public));
            let request = jsonwebtoken::decode::<JwtRequestClaims>(
                black_box(&request_jwt),
                &decoding,
                &request_validation,
            )
            .unwrap();
            black_box(request);
            jsonwebtoken::encode(&header, black_box(&claims), &encoding).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, payload_verification, issue_one);
criterion_main!(benches);
