//! Every route of the console against every role: what each may use
//! answers as usual (200 or 303), the rest 403 naming the role needed,
//! before any handler runs. The table is written here by hand, apart from
//! `roles::needed`, so that a change there shows up as a failure here.

use std::collections::BTreeSet;

use super::*;
use ren3_issuer_core::users::Role;

/// Who may use a route: the least role, or anyone (no login needed).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Least {
    Anyone,
    Role(Role),
}

use Least::Anyone;
const VIEWER: Least = Least::Role(Role::Viewer);
const ISSUER: Least = Least::Role(Role::Issuer);
const ADMIN: Least = Least::Role(Role::Admin);

/// (method, route as declared, least role). The order is the order they
/// are sent in: the changes that could stop a later row (suspending the
/// license, rotating, logging out) come last.
const MATRIX: &[(&str, &str, Least)] = &[
    ("GET", "/login", Anyone),
    ("GET", "/static/style.css", Anyone),
    ("GET", "/static/copy.js", Anyone),
    ("GET", "/healthz", Anyone),
    ("GET", "/readyz", Anyone),
    ("GET", "/metrics", Anyone),
    ("GET", "/", VIEWER),
    ("GET", "/licenses", VIEWER),
    ("GET", "/licenses/new", ISSUER),
    ("GET", "/licenses/{id}", VIEWER),
    ("GET", "/licenses/{id}/edit", ISSUER),
    ("GET", "/issue", ISSUER),
    ("GET", "/payloads/{request_hash}", VIEWER),
    ("GET", "/payloads/{request_hash}/download", VIEWER),
    ("GET", "/release", ISSUER),
    ("GET", "/keys", VIEWER),
    ("GET", "/keys/root.pub", VIEWER),
    ("GET", "/keys/revocations.token", VIEWER),
    ("GET", "/keys/{key_id}/certificate.token", VIEWER),
    ("GET", "/audit", VIEWER),
    ("POST", "/licenses", ISSUER),
    ("POST", "/licenses/{id}/edit", ISSUER),
    ("POST", "/licenses/{id}/devices", ISSUER),
    ("POST", "/issue/check", ISSUER),
    ("POST", "/issue", ISSUER),
    ("POST", "/release/check", ISSUER),
    ("POST", "/release", ISSUER),
    ("POST", "/licenses/{id}/release", ISSUER),
    ("POST", "/licenses/{id}/status", ISSUER),
    ("POST", "/keys/rotate", ADMIN),
    ("POST", "/keys/{key_id}/retire", ADMIN),
    ("POST", "/login", Anyone),
    ("POST", "/logout", VIEWER),
];

/// What the rows fill their routes with: a license with a bound device,
/// its payload, a second unbound device, and the signing key.
struct Fixture {
    license: i64,
    request_hash: String,
    key_id: String,
    /// A request for the unbound device, which `POST /issue` binds and
    /// the force release frees, and a receipt for the bound one.
    request: String,
    receipt: String,
    spare_device: String,
}

impl Console {
    /// A console signed in as `rita`, who has `role`.
    async fn signed_in_as(role: Role) -> (Self, Fixture) {
        let mut console = Console::new();
        users::add(&mut console.t.store, &actor(), "rita", PASSWORD, role, NOW).unwrap();
        let (key, license, bound) = console.bound(2, None);
        let spare =
            ren3_issuer_core::devices::add(&mut console.t.store, &actor(), license, None, NOW)
                .unwrap()
                .device
                .client_device_id;
        let details = licenses::show(&console.t.store, license).unwrap();
        let key_id = ren3_issuer_core::signing_keys::list(&console.t.store).unwrap()[0]
            .key
            .key_id
            .to_string();
        let fixture = Fixture {
            license,
            request_hash: details.issuances[0].request_hash.to_string(),
            key_id,
            request: request(&key, &spare, &installation(2)),
            receipt: receipt(&key, &bound, FIRST_SERIAL, 2, &installation(1)),
            spare_device: spare.to_string(),
        };
        let answer = console.try_login("rita", PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        console.csrf = csrf_of(&console.get("/").await.body);
        (console, fixture)
    }

    /// Sends one row of the matrix, filled in from `f`.
    async fn send_row(&mut self, method: &str, route: &str, f: &Fixture) -> Answer {
        // Retiring the only certified key is refused, so the row retires
        // the newest key: the one an admin's rotation just made.
        let newest = ren3_issuer_core::signing_keys::list(&self.t.store)
            .unwrap()
            .iter()
            .map(|entry| entry.key.key_id.to_string())
            .find(|id| *id != f.key_id)
            .unwrap_or_else(|| f.key_id.clone());
        let key_id = if method == "POST" { &newest } else { &f.key_id };
        let path = route
            .replace("{id}", &f.license.to_string())
            .replace("{request_hash}", &f.request_hash)
            .replace("{key_id}", key_id);
        if method == "GET" {
            return self.get(&path).await;
        }
        if route == "/login" {
            // Signing in again: a new session, with a new token.
            let answer = self.try_login("rita", PASSWORD).await;
            self.csrf = csrf_of(&self.get("/").await.body);
            return answer;
        }
        let csrf = self.csrf.as_str();
        let fields: Vec<(&str, &str)> = match route {
            "/licenses" => vec![("customer", "Globex"), ("max_devices", "1")],
            "/licenses/{id}/edit" => vec![("features", "export"), ("limits", ""), ("expires", "")],
            "/licenses/{id}/devices" => vec![("label", "plant 2")],
            "/issue/check" | "/issue" => vec![("request", &f.request)],
            "/release/check" | "/release" => vec![("receipt", &f.receipt)],
            "/licenses/{id}/release" => vec![
                ("device", &f.spare_device),
                ("reason", "machine stolen"),
                ("confirm", "yes"),
            ],
            "/licenses/{id}/status" => vec![("status", "suspended")],
            "/keys/{key_id}/retire" => vec![("confirm", "yes")],
            _ => vec![],
        };
        let mut fields = fields;
        fields.push(("csrf", csrf));
        if route.ends_with("/check") {
            self.post_multipart(&path, &fields).await
        } else {
            self.post(&path, &fields).await
        }
    }
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_matrix_says() {
    for role in Role::ALL {
        let (mut console, fixture) = Console::signed_in_as(role).await;
        for &(method, route, least) in MATRIX {
            let before = console.t.snapshot();
            let answer = console.send_row(method, route, &fixture).await;
            let allowed = match least {
                Anyone => true,
                Least::Role(needed) => role >= needed,
            };
            let what = format!("{role} {method} {route}");
            if allowed {
                assert!(
                    matches!(answer.status, StatusCode::OK | StatusCode::SEE_OTHER),
                    "{what}: {} {}",
                    answer.status,
                    answer.body
                );
                if route != "/logout" {
                    assert_ne!(answer.location(), "/login", "{what}: still signed in");
                }
            } else {
                let Least::Role(needed) = least else {
                    unreachable!("anyone is allowed")
                };
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{what}: {}",
                    answer.body
                );
                assert!(
                    answer
                        .body
                        .contains(&format!("This needs the {needed} role")),
                    "{what}: {}",
                    answer.body
                );
                assert_eq!(console.t.snapshot(), before, "{what}: changed nothing");
            }
        }
    }
}

/// The matrix has every route and method `app` declares, read from its
/// source like `view`'s table: a route added without a row here fails.
#[test]
fn the_matrix_has_every_route_and_method_of_the_app() {
    let declared: BTreeSet<(String, String)> = include_str!("../mod.rs")
        .split(".route(")
        .skip(1)
        .flat_map(|call| {
            let path = call.trim_start().strip_prefix('"').expect("a route path");
            let path = &path[..path.find('"').expect("its closing quote")];
            // The route's own call: up to the next `.route(` or layer.
            let call = call.split(".route_layer(").next().unwrap_or(call);
            let call = call.split(".merge(").next().unwrap_or(call);
            ["get", "post"]
                .into_iter()
                .filter(|method| call.contains(&format!("{method}(")))
                .map(|method| (method.to_uppercase(), path.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    let listed: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|&(method, route, _)| (method.to_owned(), route.to_owned()))
        .collect();
    assert_eq!(listed.len(), MATRIX.len(), "no row twice");
    assert_eq!(declared, listed);
}

#[tokio::test]
async fn the_navigation_and_pages_offer_only_what_the_role_may_use() {
    for role in Role::ALL {
        let (console, f) = Console::signed_in_as(role).await;
        let dashboard = console.get("/").await.body;
        let license = console.get(&format!("/licenses/{}", f.license)).await.body;
        let list = console.get("/licenses").await.body;
        let keys = console.get("/keys").await.body;
        let may_change = role >= Role::Issuer;
        for (what, shown, expected) in [
            (
                "nav: issue",
                dashboard.contains("href=\"/issue\""),
                may_change,
            ),
            (
                "nav: release",
                dashboard.contains("href=\"/release\""),
                may_change,
            ),
            (
                "nav: the role",
                dashboard.contains(&format!("rita ({role})")),
                true,
            ),
            (
                "new license",
                list.contains("href=\"/licenses/new\""),
                may_change,
            ),
            ("edit", license.contains("/edit\""), may_change),
            ("status", license.contains("/status\""), may_change),
            ("add device", license.contains("/devices\""), may_change),
            (
                "force release",
                license.contains("class=\"force-release\""),
                may_change,
            ),
            (
                "rotate",
                keys.contains("action=\"/keys/rotate\""),
                role == Role::Admin,
            ),
            ("audit", dashboard.contains("href=\"/audit\""), true),
            ("keys", dashboard.contains("href=\"/keys\""), true),
        ] {
            assert_eq!(shown, expected, "{role}: {what}");
        }
    }
}

#[tokio::test]
async fn a_changed_role_applies_to_the_next_request_and_is_audited_with_it() {
    let (mut console, f) = Console::signed_in_as(Role::Issuer).await;
    let path = format!("/licenses/{}/devices", f.license);
    let added = console
        .post(&path, &[("csrf", &console.csrf), ("label", "a")])
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    users::set_role(&mut console.t.store, &actor(), "rita", Role::Viewer, NOW).unwrap();
    let refused = console
        .post(&path, &[("csrf", &console.csrf), ("label", "b")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("you are signed in as a viewer"),
        "{}",
        refused.body
    );
    let actors: Vec<_> = console
        .audit_actions()
        .into_iter()
        .filter(|(_, action, _)| action == "device.add")
        .map(|(actor, _, _)| actor)
        .collect();
    assert_eq!(
        actors.last().map(String::as_str),
        Some("console:rita (issuer)")
    );
}
