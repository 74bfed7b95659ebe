use crate::support::TestApp;

#[tokio::test]
async fn restart_keeps_the_active_license_and_the_device_key() {
    let app = TestApp::new().await;
    app.install(1).await;
    app.register(&crate::support::key()).await;
    let device_key = app.state.device_public_key();
    let before = app.dump().await;
    let status = app.get_status().await.json;

    let app = app.restart().await;
    assert_eq!(app.state.device_public_key(), device_key);
    assert_eq!(app.dump().await, before);
    assert_eq!(app.get_status().await.json, status);
    let handle = app.state.license();
    assert!(handle.is_licensed());
    assert!(handle.has_feature("ingest"));
    assert_eq!(handle.limit("max-sources"), Some(12));
}

#[tokio::test]
async fn restart_with_offline_licensing_disabled_runs_unlicensed() {
    let app = TestApp::new().await;
    app.install(1).await;
    let app = app
        .restart_with(&[("enable_offline_license", "false")])
        .await;
    assert!(!app.state.license().is_licensed());
    assert_eq!(app.get_status().await.json["offlineLicensing"], false);
}
