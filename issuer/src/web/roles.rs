//! Which role each console route needs: the one place that knows, read by
//! `auth::require_login` on every request, so no handler can forget its
//! check. The navigation and the pages hide what a role cannot use, but
//! this table is what refuses it.

use axum::http::Method;
use ren3_issuer_core::users::Role;

/// The least role that may send `method` to `route` (the route as
/// declared in `super::app`, e.g. `/licenses/{id}/status`). Reading is a
/// viewer's, except the forms that only lead to a change; changing
/// licenses, devices and seats is an issuer's; the signing keys are an
/// admin's. A route missing here needs `admin`: a new route is closed
/// until someone decides who may use it.
pub(crate) fn needed(method: &Method, route: &str) -> Role {
    let reads = matches!(*method, Method::GET | Method::HEAD);
    match route {
        "/keys/rotate" | "/keys/{key_id}/retire" => Role::Admin,
        // Forms whose only use is a change an issuer makes.
        "/licenses/new" | "/licenses/{id}/edit" | "/issue" | "/release" if reads => Role::Issuer,
        "/"
        | "/licenses"
        | "/licenses/{id}"
        | "/payloads/{request_hash}"
        | "/payloads/{request_hash}/download"
        | "/keys"
        | "/keys/root.pub"
        | "/keys/revocations.token"
        | "/keys/{key_id}/certificate.token"
        | "/audit"
            if reads =>
        {
            Role::Viewer
        }
        // Anyone signed in may end their own session.
        "/logout" => Role::Viewer,
        "/licenses"
        | "/licenses/{id}/edit"
        | "/licenses/{id}/status"
        | "/licenses/{id}/devices"
        | "/licenses/{id}/release"
        | "/issue"
        | "/issue/check"
        | "/release"
        | "/release/check" => Role::Issuer,
        _ => Role::Admin,
    }
}
