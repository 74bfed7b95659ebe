//! The trust this build has: the vendor's root, compiled in by `build.rs`,
//! and the revocation floor compiled in with it.
//!
//! A [`Trust`] is read-only and can only be made here, from what the build
//! embedded: no variable, file, store row or public function adds or
//! replaces a root at run time. The one exception is a development build
//! (feature `dev-root` *and* debug assertions), which reads its root from
//! `REN3_DEV_TRUST_ROOT` at start-up, says so in its log and status, and
//! must never ship.

use std::fmt;

use ren3_shared::{Digest, RevocationList, TrustRoot};

use crate::config::ConfigError;

// `PINNED_ROOT_PUBLIC_KEY` (pinned builds only) and `REVOCATION_FLOOR`,
// both checked by build.rs.
include!(concat!(env!("OUT_DIR"), "/build_trust.rs"));

/// The variable a development build reads its root's public-key file from.
/// A pinned build ignores it.
pub const DEV_TRUST_ROOT: &str = "REN3_DEV_TRUST_ROOT";

/// Whether this binary is a development build, whose root is taken at run
/// time.
pub const IS_DEVELOPMENT_BUILD: bool = cfg!(all(feature = "dev-root", debug_assertions));

/// The root payloads must chain to, and the compiled revocation floor.
#[derive(Clone)]
pub struct Trust {
    root: TrustRoot,
    pinned: bool,
    floor: Option<RevocationList>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("root", &self.fingerprint().to_string())
            .field("pinned", &self.pinned)
            .field("floor_version", &self.floor_version())
            .finish()
    }
}

impl Trust {
    /// The root every payload's certificate and revocation list must be
    /// signed by.
    pub fn root(&self) -> &TrustRoot {
        &self.root
    }

    /// The root's fingerprint, for a vendor to compare with the root they
    /// meant to pin.
    pub fn fingerprint(&self) -> Digest {
        self.root.fingerprint()
    }

    /// `true` when the root is compiled in; `false` in a development build.
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// The revocation list compiled into this build, if any: the effective
    /// list is never older.
    pub fn floor(&self) -> Option<&RevocationList> {
        self.floor.as_ref()
    }

    /// The floor's version; 0 without one.
    pub fn floor_version(&self) -> u64 {
        self.floor.as_ref().map_or(0, RevocationList::version)
    }

    /// The trust of this build, for an ingestor's `--version` or start-up
    /// line: the pinned root and the compiled revocation floor. A
    /// development build reads its root from [`DEV_TRUST_ROOT`] in the
    /// process environment; a pinned build reads nothing.
    ///
    /// # Errors
    ///
    /// A development build without a readable root file, or a binary whose
    /// compiled-in trust does not verify (it was altered): the message says
    /// which, for the operator as is.
    ///
    /// ```
    /// let trust = ren3_client::Trust::this_build()?;
    /// println!("trust root {} (pinned: {})", trust.fingerprint(), trust.is_pinned());
    /// # Ok::<(), ren3_client::ConfigError>(())
    /// ```
    pub fn this_build() -> Result<Self, ConfigError> {
        Self::of_this_build(&|name| {
            (name == DEV_TRUST_ROOT)
                .then(|| std::env::var(name).ok())
                .flatten()
        })
    }

    /// The trust of this build. `lookup` is read only by a development
    /// build, for [`DEV_TRUST_ROOT`].
    pub(crate) fn of_this_build(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let (root, pinned) = root_of_this_build(lookup)?;
        let floor = REVOCATION_FLOOR
            .map(|token| {
                // build.rs opened this very token under this very root, so it
                // fails only if the build was tampered with.
                RevocationList::open(token, &root).map_err(|e| {
                    ConfigError::Build(format!(
                        "the revocation floor compiled into this build does not verify ({e})"
                    ))
                })
            })
            .transpose()?;
        Ok(Self {
            root,
            pinned,
            floor,
        })
    }
}

#[cfg(not(all(feature = "dev-root", debug_assertions)))]
fn root_of_this_build(
    _lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(TrustRoot, bool), ConfigError> {
    // build.rs parsed these bytes as a usable key, so this fails only if
    // the build was tampered with.
    let key = ren3_shared::PublicKey::from_bytes(&PINNED_ROOT_PUBLIC_KEY).map_err(|e| {
        ConfigError::Build(format!(
            "the root compiled into this build is not a usable key ({e})"
        ))
    })?;
    Ok((TrustRoot::new(key), true))
}

#[cfg(all(feature = "dev-root", debug_assertions))]
fn root_of_this_build(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<(TrustRoot, bool), ConfigError> {
    let problem = |problem: String| ConfigError::Invalid {
        variable: DEV_TRUST_ROOT,
        problem,
    };
    let path = lookup(DEV_TRUST_ROOT)
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            problem(
                "required in a development build (feature `dev-root`), which pins no root: \
                 set it to the path of the root public-key file to trust, or build without \
                 the feature and with REN3_TRUST_ROOT set"
                    .into(),
            )
        })?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| problem(format!("cannot read `{path}`: {e}")))?;
    let root = TrustRoot::parse_public_file(&text)
        .map_err(|e| problem(format!("`{path}`: {e}; point it at a root public-key file")))?;
    Ok((root, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_build_pins_the_test_only_root_of_the_workspace() {
        if IS_DEVELOPMENT_BUILD {
            return;
        }
        let trust = Trust::of_this_build(&|_| None).unwrap();
        let fixture = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/TEST-ONLY-root.pub"
        ))
        .unwrap();
        let expected = TrustRoot::parse_public_file(&fixture).unwrap();
        assert!(trust.is_pinned());
        assert_eq!(*trust.root(), expected);
        assert_eq!(trust.fingerprint(), expected.fingerprint());
        assert!(trust.root().is_test_only());
    }
}
