//! The records the store reads and writes: the rules' view of each row.

use super::*;

/// The state of a license.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseStatus {
    Active,
    Suspended,
    /// Final: a revoked license never becomes active again.
    Revoked,
}

impl LicenseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseStatus::Active => "active",
            LicenseStatus::Suspended => "suspended",
            LicenseStatus::Revoked => "revoked",
        }
    }
}

impl fmt::Display for LicenseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a license status (active, suspended or revoked)")]
pub struct UnknownStatus(String);

impl FromStr for LicenseStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(LicenseStatus::Active),
            "suspended" => Ok(LicenseStatus::Suspended),
            "revoked" => Ok(LicenseStatus::Revoked),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// A row of `signing_keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SigningKeyRecord {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub retired_at: Option<i64>,
}

/// A row of `licenses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseRecord {
    #[serde(skip)]
    pub id: i64,
    pub key_fingerprint: Digest,
    pub key_hint: String,
    pub customer: String,
    pub features: Vec<String>,
    pub limits: BTreeMap<String, u64>,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub expires_at: Option<i64>,
    pub max_devices: u32,
    pub status: LicenseStatus,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
    /// How long payloads keep working after `expires_at`, in seconds.
    pub grace_seconds: u64,
    /// What a client does when its clock looks wound back.
    pub clock_policy: ClockPolicy,
}

/// A license with its seat counts, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseSummary {
    #[serde(flatten)]
    pub license: LicenseRecord,
    /// Devices registered for the license, bound or not.
    pub devices: u32,
    /// Devices bound to an installation: the seats in use.
    pub bound_devices: u32,
}

/// A row of `devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceRecord {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub license_id: i64,
    pub client_device_id: DeviceId,
    pub label: Option<String>,
    /// The installation key the device id is bound to, once issued for.
    pub public_key: Option<PublicKey>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: i64,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub bound_at: Option<i64>,
}

impl DeviceRecord {
    pub fn is_bound(&self) -> bool {
        self.public_key.is_some()
    }
}

/// A row of `issuances`, with its device's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuanceRecord {
    #[serde(skip)]
    pub license_id: i64,
    #[serde(skip)]
    pub device_id: i64,
    pub client_device_id: DeviceId,
    pub request_hash: Digest,
    pub request_id: RequestId,
    pub serial: u64,
    pub key_id: KeyId,
    /// The payload token exactly as issued.
    pub payload: String,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub issued_at: i64,
    /// The installation key the payload is bound to, and the counter of the
    /// request it answers (the installation's sequence number, FORMAT.md
    /// §6). `None` for an issuance made before migration 0007: a version 1
    /// request had no counter.
    pub public_key: Option<PublicKey>,
    pub request_counter: Option<u64>,
}
