//! Measures the issuer's read paths against a store filled by
//! `fill-issuer`: p50 and p99 of the library calls the CLI makes and of the
//! console's pages, driven in-process through the router (`oneshot`) with
//! a logged-in session. Prints a table with the targets, and the store's
//! size on disk. It adds one console user and one session to the store.
//!
//! ```text
//! cargo run --release -p ren3-bench --bin scale-probe -- --db /tmp/scale.db
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use clap::Parser;
use http_body_util::BodyExt as _;
use ren3_issuer::web::{self, AppState, Config};
use ren3_issuer_core::audit::Actor;
use ren3_issuer_core::{StorePaths, licenses, sessions, setup, users};
use tower::ServiceExt as _;

#[derive(Debug, Parser)]
#[command(about = "p50/p99 of the issuer's read paths on a filled store")]
struct Args {
    /// A store filled by fill-issuer.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Timed runs of each measurement.
    #[arg(long, default_value_t = 101)]
    samples: usize,
}

struct Row {
    what: &'static str,
    target_ms: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `f` `samples` times (after one warm-up run) and takes percentiles.
fn measure(
    what: &'static str,
    target_ms: f64,
    samples: usize,
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<Row> {
    f(0).with_context(|| format!("{what} failed"))?;
    let mut times = Vec::with_capacity(samples);
    for n in 0..samples {
        let started = Instant::now();
        f(n + 1).with_context(|| format!("{what} failed"))?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(Row {
        what,
        target_ms,
        p50: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let paths = StorePaths::new(args.db.clone(), None);
    let mut store = setup::open_store(&paths)?;
    let now = ren3_shared::timestamp::now();

    // Samples spread over the whole table, and search terms that occur.
    let (count, max_id): (i64, i64) = store.read(|conn| {
        conn.query_row("SELECT COUNT(*), MAX(id) FROM licenses", [], |r| {
            Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0)))
        })
        .map_err(ren3_issuer_core::StoreError::from)
    })?;
    if count == 0 {
        bail!(
            "{} holds no licenses; fill it with fill-issuer first",
            args.db.display()
        );
    }
    let id_of = |n: usize| 1 + (n as i64 * 7_919_993) % max_id;
    let hints: Vec<String> = (0..args.samples + 1)
        .map(|n| {
            let details = licenses::show(&store, id_of(n))?;
            // The key prefix a person types: the first group and two more characters.
            Ok(details.license.key_hint.chars().take(9).collect())
        })
        .collect::<Result<_>>()?;
    let customers = [
        "Acme",
        "Globex Freight",
        "hooli",
        "Nordwind Labs AG",
        "Vega",
    ];

    let mut rows = vec![
        measure(
            "license show (library, as the CLI)",
            10.0,
            args.samples,
            |n| {
                licenses::show(&store, id_of(n))?;
                Ok(())
            },
        )?,
        measure(
            "search by customer (library, first page of 25)",
            10.0,
            args.samples,
            |n| {
                licenses::page(&store, Some(customers[n % customers.len()]), None, 25)?;
                Ok(())
            },
        )?,
        measure(
            "search by key prefix (library, first page of 25)",
            10.0,
            args.samples,
            |n| {
                licenses::page(&store, Some(&hints[n]), None, 25)?;
                Ok(())
            },
        )?,
        // The two ends of a search page's plan (issuer-core/src/store/licenses.rs,
        // PagePlan): nearly every license matches, or none does.
        measure(
            "search matching most licenses (library, a deep page)",
            10.0,
            args.samples,
            |n| {
                licenses::page(&store, Some("REN3K1-"), Some(max_id - n as i64 * 997), 25)?;
                Ok(())
            },
        )?,
        measure(
            "search matching nothing (library)",
            10.0,
            args.samples,
            |n| {
                licenses::page(&store, Some(&format!("Nobody {n}")), None, 25)?;
                Ok(())
            },
        )?,
    ];

    let name = format!("probe-{}", std::process::id());
    let user = users::add(
        &mut store,
        &Actor::cli(),
        &name,
        "probe password, long and uncommon",
        users::Role::Admin,
        now,
    )?;
    let session = sessions::create(&mut store, user.id, now)?;
    let cookie = format!("ren3_session={}", session.id);
    let keys = setup::open_keys(&paths)?;
    let app = web::app(AppState::new(store, keys, Config { behind_tls: false }));
    let runtime = tokio::runtime::Runtime::new()?;
    let get = |uri: String| -> Result<()> {
        runtime.block_on(async {
            let request = Request::get(&uri)
                .header(header::COOKIE, &cookie)
                .body(Body::empty())?;
            let response = app.clone().oneshot(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            if status != StatusCode::OK {
                bail!("GET {uri}: {status}: {}", String::from_utf8_lossy(&body));
            }
            Ok(())
        })
    };
    let deep = max_id / 2;
    rows.push(measure(
        "console: license list, first page",
        50.0,
        args.samples,
        |_| get("/licenses".into()),
    )?);
    rows.push(measure(
        "console: license list, a deep page",
        50.0,
        args.samples,
        |n| get(format!("/licenses?before={}", deep - n as i64 * 1000)),
    )?);
    rows.push(measure(
        "console: license search page",
        50.0,
        args.samples,
        |n| {
            get(format!(
                "/licenses?q={}",
                customers[n % customers.len()].replace(' ', "+")
            ))
        },
    )?);
    rows.push(measure(
        "console: license detail page",
        50.0,
        args.samples,
        |n| get(format!("/licenses/{}", id_of(n))),
    )?);
    rows.push(measure("console: dashboard", 100.0, args.samples, |_| {
        get("/".into())
    })?);

    let size = std::fs::metadata(&args.db)?.len();
    let wal = std::fs::metadata(args.db.with_extension("db-wal")).map_or(0, |m| m.len());
    println!(
        "store: {} ({count} licenses), {:.1} MiB on disk (+ {:.1} MiB WAL)",
        args.db.display(),
        size as f64 / 1048576.0,
        wal as f64 / 1048576.0
    );
    println!("| what | p50 | p99 | target (p50) | met |");
    println!("|---|---|---|---|---|");
    let mut missed = false;
    for row in &rows {
        let p50 = row.p50.as_secs_f64() * 1000.0;
        let met = p50 < row.target_ms;
        missed |= !met;
        println!(
            "| {} | {p50:.2} ms | {:.2} ms | < {:.0} ms | {} |",
            row.what,
            row.p99.as_secs_f64() * 1000.0,
            row.target_ms,
            if met { "yes" } else { "NO" }
        );
    }
    if missed {
        std::process::exit(1);
    }
    Ok(())
}
