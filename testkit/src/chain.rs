//! Chains of trust made in-process, for tests that need a key the pinned
//! root never certified, a window that ends, or a newer revocation list.

use ren3_shared::{
    Certificate, IssuerKey, KeyId, PayloadSigner, Revocation, RevocationList, RevocationListBody,
    RootKey,
};

/// The start of every window these helpers certify.
pub const NOT_BEFORE: i64 = 1_700_000_000;

/// A certificate of `issuer` by `root` for `[not_before, not_after)`.
pub fn certify(root: &RootKey, issuer: &IssuerKey, not_before: i64, not_after: i64) -> Certificate {
    let request = issuer
        .certification_request(not_before, not_after, not_before)
        .unwrap();
    root.certify(&request, not_before).unwrap()
}

/// A revocation list by `root`: `version`, revoking each
/// `(key id, revoked at, grace until)`.
pub fn revocations(root: &RootKey, version: u64, revoked: &[(KeyId, i64, i64)]) -> RevocationList {
    let mut revoked: Vec<Revocation> = revoked
        .iter()
        .map(|&(key_id, revoked_at, grace_until)| Revocation {
            key_id,
            revoked_at,
            grace_until,
        })
        .collect();
    revoked.sort_by_key(|r| r.key_id);
    root.sign_revocations(RevocationListBody {
        version,
        issued_at: NOT_BEFORE,
        revoked,
    })
    .unwrap()
}

/// `issuer`, certified by `root` from [`NOT_BEFORE`] to the end of
/// representable time, carrying `list`.
pub fn signer(root: &RootKey, issuer: IssuerKey, list: RevocationList) -> PayloadSigner {
    let certificate = certify(root, &issuer, NOT_BEFORE, ren3_shared::timestamp::MAX);
    PayloadSigner::new(issuer, certificate, list).unwrap()
}

/// A root no build trusts, and a signer under it: a customer's own
/// "vendor".
pub fn rogue_signer() -> PayloadSigner {
    let root = RootKey::from_seed(&[0x66; 32]);
    let list = revocations(&root, 1, &[]);
    signer(&root, IssuerKey::from_seed(&[0x67; 32]), list)
}
