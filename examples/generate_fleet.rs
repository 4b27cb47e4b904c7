//! Regenerate the bundled example fleet: `cargo run --example generate_fleet -- examples/fleet`.
//!
//! Keeps the demo keys already in `<dir>/demo-keys/` (so the checked-in ciphertext stays decryptable
//! with the committed keys), rewrites every other file, and prints how long it took.

use anyhow::{Context, Result};
use ocitool_devkit::fleetgen::{self, FleetSpec};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: generate_fleet <output-dir>   (e.g. examples/fleet)")?;
    let spec = FleetSpec::example();
    let started = Instant::now();
    let fleet = fleetgen::regenerate(&dir, &spec)?;
    let files = fleetgen::file_list(&spec).len();
    println!(
        "wrote {files} files for {} clusters to {} in {:.2?}",
        spec.clusters.len(),
        dir.display(),
        started.elapsed()
    );
    println!(
        "decrypt with: SOPS_AGE_KEY_FILE={}",
        fleet.key_file.display()
    );
    Ok(())
}
