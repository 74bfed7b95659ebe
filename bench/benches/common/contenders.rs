//! The work each comparison measures, set up once and shared by the
//! criterion benches (`crypto_paths`) and the paired ratios (`paired`), so
//! that both time exactly the same calls.

use std::hint::black_box;

use ed25519_dalek::{Signature, Signer as _, SigningKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ren3_bench::{
    Inputs, JwtClaims, JwtRequestClaims, NOW, ed25519_pkcs8_der, raw_parts, terms_for,
};
use ren3_shared::payload::Window;
use ren3_shared::{PublicKey, VerifiedPayload, VerifiedRequest};

/// One signed message of the payload's chain, as the floor verifies it:
/// the signer's key already decoded, the exact bytes and the signature.
///
/// The floor calls `verify_strict` through `ren3_shared::PublicKey`, a
/// one-line wrapper of ed25519-dalek's: the same work, and the same
/// compiled copy of it as the product's. ed25519-dalek's check is generic
/// inside (`RCompute<Sha512>`), and a release build instantiates a generic
/// in every crate that uses it; calling it from this crate gave the floor a
/// copy of its own, whose speed moved by a tenth from build to build while
/// the product's did not, and the paired ratio with it (0.94x and 1.16x in
/// two runs of the same code).
struct Signed {
    key: PublicKey,
    message: Vec<u8>,
    signature: [u8; 64],
}

impl Signed {
    fn of(key: PublicKey, token: &str) -> Self {
        let (message, signature) = raw_parts(token);
        Self {
            key,
            message,
            signature,
        }
    }

    fn verify(&self) {
        assert!(
            self.key
                .verify_strict(black_box(&self.message), &self.signature),
            "the floor verifies"
        );
    }
}

/// Everything the contenders need, made once from fixed seeds.
pub struct Contenders {
    inputs: Inputs,
    /// The chain a payload needs checked, in `VerifiedPayload::open`'s
    /// order: the certificate (the root's signature), the payload (the
    /// certified issuer key's), the revocation list (the root's).
    certificate: Signed,
    payload: Signed,
    revocations: Signed,
    /// The issuer key's bytes, as the certificate carries them.
    issuer_public: [u8; 32],
    /// The request's device key, as the floor gets it already parsed.
    device_key: PublicKey,
    request_message: Vec<u8>,
    request_signature: [u8; 64],
    signing: SigningKey,
    header: Header,
    claims: JwtClaims,
    encoding: EncodingKey,
    payload_jwt: String,
    payload_decoding: DecodingKey,
    payload_validation: Validation,
    device_public: [u8; 32],
    request_jwt: String,
    request_validation: Validation,
}

impl Contenders {
    pub fn new() -> Self {
        let inputs = Inputs::new();
        let root = inputs.root.public_key();
        let issuer_public = inputs.signer.certificate().body.public_key;
        let certificate = Signed::of(root, &inputs.signer.certificate().token());
        let payload = Signed::of(issuer_public, &inputs.payload_token);
        let revocations = Signed::of(root, &inputs.signer.revocations().token());
        let request = VerifiedRequest::open(&inputs.request_token).expect("the request verifies");
        let (request_message, request_signature) = raw_parts(&inputs.request_token);
        let header = Header::new(Algorithm::EdDSA);
        let encoding = EncodingKey::from_ed_der(&ed25519_pkcs8_der(&Inputs::ISSUER_SEED));

        // jsonwebtoken checks nbf and exp against the system clock, so the
        // claims it verifies are shifted to now; the work is the same as
        // ours at NOW.
        let mut shifted = JwtClaims::of(&inputs.license);
        let now = ren3_shared::timestamp::now();
        (shifted.iat, shifted.nbf, shifted.exp) = (now - 60, now - 60, now + 365 * 86_400);
        let payload_jwt = jsonwebtoken::encode(&header, &shifted, &encoding).expect("a JWT");
        let mut payload_validation = Validation::new(Algorithm::EdDSA);
        payload_validation.validate_nbf = true;
        payload_validation.validate_exp = true;
        payload_validation.required_spec_claims.clear();

        // Like for like: a JWT issuer verifies the device-signed request
        // (its key taken from the request, as ours is) before it signs.
        let device_seed = [2; 32];
        let device_public = SigningKey::from_bytes(&device_seed)
            .verifying_key()
            .to_bytes();
        let request_jwt = jsonwebtoken::encode(
            &header,
            &JwtRequestClaims::of(&request),
            &EncodingKey::from_ed_der(&ed25519_pkcs8_der(&device_seed)),
        )
        .expect("a JWT");
        let mut request_validation = Validation::new(Algorithm::EdDSA);
        request_validation.validate_exp = false;
        request_validation.required_spec_claims.clear();

        let contenders = Self {
            claims: JwtClaims::of(&inputs.license),
            signing: SigningKey::from_bytes(&Inputs::ISSUER_SEED),
            payload_decoding: DecodingKey::from_ed_der(&issuer_public.to_bytes()),
            issuer_public: issuer_public.to_bytes(),
            certificate,
            payload,
            revocations,
            device_key: request.device_public_key,
            request_message,
            request_signature,
            header,
            encoding,
            payload_jwt,
            payload_validation,
            device_public,
            request_jwt,
            request_validation,
            inputs,
        };
        // Every contender must succeed before it is timed.
        contenders.floor_verify();
        contenders.floor_verify_decoding_key();
        contenders.ren3_verify();
        contenders.jwt_verify();
        contenders.floor_issue();
        contenders.floor_issue_decoding_key();
        contenders.ren3_issue();
        contenders.ren3_sign_only();
        contenders.jwt_sign_only();
        contenders.jwt_issue();
        contenders
    }

    /// A reference below the floor: the three raw `verify_strict` calls a
    /// payload's chain needs (certificate, payload, revocation list), over
    /// the same bytes, every key already decoded, which no verifier can
    /// have for the issuer key: the difference from
    /// [`Self::floor_verify_decoding_key`] is that key's decoding.
    pub fn floor_verify(&self) {
        self.certificate.verify();
        self.payload.verify();
        self.revocations.verify();
    }

    /// The floor of a payload's check, which its target is judged against:
    /// the chain's three raw `verify_strict` calls, the issuer key decoded
    /// from the certificate's 32 bytes first, as RFC 8032 verification does
    /// and as any verifier of the chain must (the root's key is compiled
    /// in, decoded once per process).
    pub fn floor_verify_decoding_key(&self) {
        self.certificate.verify();
        let key =
            PublicKey::from_bytes(black_box(&self.issuer_public)).expect("the floor's key decodes");
        assert!(
            key.verify_strict(black_box(&self.payload.message), &self.payload.signature),
            "the floor verifies"
        );
        self.revocations.verify();
    }

    /// A client's whole payload check: decode, the chain's three
    /// `verify_strict` calls, parse, window.
    pub fn ren3_verify(&self) -> VerifiedPayload {
        let payload =
            VerifiedPayload::open(black_box(&self.inputs.payload_token), &self.inputs.root)
                .expect("the payload verifies");
        assert_eq!(payload.license.window_at(NOW), Window::Valid);
        payload
    }

    /// jsonwebtoken's EdDSA decode with nbf and exp validation: one
    /// signature, where a ReN3 payload's chain has three.
    pub fn jwt_verify(&self) -> JwtClaims {
        jsonwebtoken::decode::<JwtClaims>(
            black_box(&self.payload_jwt),
            &self.payload_decoding,
            &self.payload_validation,
        )
        .expect("the JWT verifies")
        .claims
    }

    /// A reference below the floor: raw `verify_strict` of the request
    /// (through the product's compiled copy, see [`Signed`]) with its device
    /// key already decoded, which no issuer can have, then a raw `sign` of
    /// the payload.
    pub fn floor_issue(&self) -> Signature {
        assert!(
            self.device_key
                .verify_strict(black_box(&self.request_message), &self.request_signature),
            "the floor verifies"
        );
        self.signing.sign(black_box(&self.payload.message))
    }

    /// The floor of issuing one, which its target is judged against: the
    /// request's device key decoded from its bytes first, as RFC 8032
    /// verification does and no issuer can skip, then `verify_strict` and a
    /// raw `sign` of the payload.
    pub fn floor_issue_decoding_key(&self) -> Signature {
        let key =
            PublicKey::from_bytes(black_box(&self.device_public)).expect("the floor's key decodes");
        assert!(
            key.verify_strict(black_box(&self.request_message), &self.request_signature),
            "the floor verifies"
        );
        self.signing.sign(black_box(&self.payload.message))
    }

    /// Issuing without storage, as the issuer does it: open the request,
    /// check its terms against the rules and the certificate's window, sign
    /// them behind the certificate and revocation list lines, encode.
    pub fn ren3_issue(&self) -> String {
        let request = VerifiedRequest::open(black_box(&self.inputs.request_token))
            .expect("the request verifies");
        let signer = &self.inputs.signer;
        let terms = signer
            .terms(terms_for(&request, 1))
            .expect("the terms are valid");
        signer.sign_terms(terms).token()
    }

    /// Encoding and signing the payload's terms only, as the half of issuing
    /// that jsonwebtoken's encode does: check and encode the terms, sign,
    /// and write the token with its checksum.
    pub fn ren3_sign_only(&self) -> String {
        self.inputs
            .signer
            .sign_payload(black_box(&self.inputs.license))
            .expect("the payload signs")
            .token()
    }

    /// jsonwebtoken's EdDSA encode of the payload's claims only.
    pub fn jwt_sign_only(&self) -> String {
        jsonwebtoken::encode(&self.header, black_box(&self.claims), &self.encoding)
            .expect("the JWT encodes")
    }

    /// jsonwebtoken decoding and validating a request JWT with the key it
    /// names, then encoding the payload.
    pub fn jwt_issue(&self) -> String {
        let decoding = DecodingKey::from_ed_der(black_box(&self.device_public));
        let request = jsonwebtoken::decode::<JwtRequestClaims>(
            black_box(&self.request_jwt),
            &decoding,
            &self.request_validation,
        )
        .expect("the request JWT verifies");
        black_box(request);
        self.jwt_sign_only()
    }
}
