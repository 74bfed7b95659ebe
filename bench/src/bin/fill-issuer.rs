//! Fills a new issuer store with generated licenses, devices and signed
//! issuances, for the scale measurements (`scale-probe`):
//!
//! ```text
//! cargo run --release -p ren3-bench --bin fill-issuer -- --db /tmp/scale.db --licenses 1000000
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use ren3_bench::fill::{self, FillSpec};

#[derive(Debug, Parser)]
#[command(about = "Fill a new issuer store with N licenses, N devices and N issuances")]
struct Args {
    /// The store to create (must not exist); its signing key goes to `<PATH>.keys`
    /// and the BENCH-ONLY root it is certified by to `<PATH>.root`.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// How many licenses; each gets one bound device and one signed issuance.
    #[arg(long, default_value_t = 1_000_000)]
    licenses: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let now = ren3_shared::timestamp::now();
    fill::fill(
        &args.db,
        FillSpec {
            licenses: args.licenses,
            devices_per_license: 1,
            issue: true,
            varied: true,
            now,
        },
        false,
    )?;
    let size = std::fs::metadata(&args.db)?.len();
    eprintln!(
        "filled {} with {n} licenses, {n} devices and {n} issuances in {:.1} s; {:.1} MiB on disk",
        args.db.display(),
        started.elapsed().as_secs_f64(),
        size as f64 / (1024.0 * 1024.0),
        n = args.licenses,
    );
    Ok(())
}
