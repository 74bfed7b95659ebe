//! The dry run's report: every check `issue` makes, each with its verdict,
//! for the console's "check before you issue" page.

use super::*;

/// One check of an issuance, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Check {
    DeviceSignature,
    License,
    LicenseState,
    Expiry,
    DeviceMembership,
    Installation,
    Seats,
    /// A signing key with a certificate covering now, not revoked.
    SigningKey,
}

impl Check {
    pub const ALL: [Check; 8] = [
        Check::DeviceSignature,
        Check::License,
        Check::LicenseState,
        Check::Expiry,
        Check::DeviceMembership,
        Check::Installation,
        Check::Seats,
        Check::SigningKey,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Check::DeviceSignature => "device signature",
            Check::License => "license",
            Check::LicenseState => "license state",
            Check::Expiry => "expiry",
            Check::DeviceMembership => "device membership",
            Check::Installation => "installation binding",
            Check::Seats => "seats",
            Check::SigningKey => "signing key",
        }
    }
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum Verdict {
    Pass {
        reason: String,
    },
    /// `message` is the error [`issue`] would refuse with.
    Fail {
        code: &'static str,
        message: String,
    },
    /// An earlier failure left nothing to check.
    NotChecked {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    pub check: Check,
    pub verdict: Verdict,
}

/// Every check of an issuance, run without writing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueReport {
    /// The request's fields; decoded without the signature check if that
    /// failed, and absent if even that is impossible.
    pub request: Option<RequestFields>,
    pub checks: Vec<CheckLine>,
    /// The license the request names, if it exists.
    #[serde(skip)]
    pub license: Option<LicenseRecord>,
    /// This exact request was issued before: issuing returns that payload.
    pub answered_before: bool,
}

impl IssueReport {
    /// Whether [`issue`] would issue now (barring a private key that cannot
    /// be read, which only signing reveals).
    pub fn all_passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| matches!(c.verdict, Verdict::Pass { .. }))
    }

    /// The first failure: the code and message [`issue`] refuses with.
    pub fn first_failure(&self) -> Option<(&'static str, &str)> {
        self.checks.iter().find_map(|c| match &c.verdict {
            Verdict::Fail { code, message } => Some((*code, message.as_str())),
            _ => None,
        })
    }
}

/// Runs every check [`issue`] makes on `request_text` at `now`, in a read
/// transaction, and reports each one. Nothing is written.
pub fn check(store: &Store, request_text: &str, now: i64) -> Result<IssueReport, StoreError> {
    let request_fields = match inspect::request(request_text).fields {
        Some(Fields::Request(fields)) => Some(fields),
        _ => None,
    };
    let request = match VerifiedRequest::open(request_text) {
        Ok(request) => request,
        Err(e) => {
            let e = IssueError::Request(e);
            let mut checks = vec![CheckLine {
                check: Check::DeviceSignature,
                verdict: Verdict::Fail {
                    code: e.code(),
                    message: e.to_string(),
                },
            }];
            checks.extend(Check::ALL[1..].iter().map(|&check| CheckLine {
                check,
                verdict: Verdict::NotChecked {
                    reason: "the request could not be read".to_owned(),
                },
            }));
            return Ok(IssueReport {
                request: request_fields,
                checks,
                license: None,
                answered_before: false,
            });
        }
    };
    store.read(|conn| {
        let evaluation = evaluate(conn, &request, now, &mut ChainCheck::default())?;
        Ok(IssueReport {
            request: request_fields,
            answered_before: matches!(&evaluation.outcome, Ok(r) if r.answered.is_some()),
            checks: evaluation.checks,
            license: evaluation.license,
        })
    })
}

/// The checks of one issuance, recorded in order; the first failure is
/// the error an issuance refuses with.
pub(super) struct Checks {
    pub(super) lines: Vec<CheckLine>,
    pub(super) first_failure: Option<IssueError>,
}

impl Checks {
    pub(super) fn pass(&mut self, check: Check, reason: String) {
        self.lines.push(CheckLine {
            check,
            verdict: Verdict::Pass { reason },
        });
    }

    pub(super) fn fail(&mut self, check: Check, error: IssueError) {
        self.lines.push(CheckLine {
            check,
            verdict: Verdict::Fail {
                code: error.code(),
                message: error.to_string(),
            },
        });
        self.first_failure.get_or_insert(error);
    }

    pub(super) fn not_checked(&mut self, check: Check, reason: &str) {
        self.lines.push(CheckLine {
            check,
            verdict: Verdict::NotChecked {
                reason: reason.to_owned(),
            },
        });
    }
}
