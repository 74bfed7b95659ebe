//! Any bytes as the body of `POST /license/import`, through the client's
//! real router and store: never a 5xx, never a panic, and never an active
//! license (the fuzzer cannot sign a payload for this installation). The
//! client trusts the root it was built with: the TEST-ONLY root, set by
//! the workspace's `.cargo/config.toml`, which needs debug assertions on
//! (`cargo fuzz run -a`, or `-Cdebug-assertions`).
#![no_main]

use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use ren3_client::{AppState, Config};
use tower::ServiceExt as _;

struct Target {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    _dir: tempfile::TempDir,
}

static TARGET: LazyLock<Target> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("license.db");
    let config = Config::from_lookup(|name| match name {
        "enable_offline_license" => Some("true".into()),
        "client_device_id" => Some("REN3D1-TEST0-DEV1C-E0000-00002".into()),
        "license_db_path" => Some(db.to_string_lossy().into_owned()),
        _ => None,
    })
    .expect("the fuzz configuration is valid");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let state = runtime.block_on(AppState::open(&config)).expect("the store opens");
    Target {
        runtime,
        state,
        _dir: dir,
    }
});

fuzz_target!(|body: &[u8]| {
    let target = &*TARGET;
    // The licensing routes answer only this machine's names: without a
    // `Host`, every input would stop at the host check, not reach import.
    let request = Request::post("/license/import")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a well-formed request");
    let response = target
        .runtime
        .block_on(ren3_client::app(target.state.clone()).oneshot(request))
        .expect("the router is infallible");
    assert!(
        response.status() < StatusCode::INTERNAL_SERVER_ERROR,
        "import answered {}",
        response.status()
    );
    assert!(!target.state.license().is_licensed(), "a fuzzed payload was installed");
});
