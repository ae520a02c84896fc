//! Developer commands. Run from anywhere in the repository:
//!
//! - `cargo xtask dev [--release]`: install what is missing, start Redis and Balas on SQLite under
//!   `data/`, rebuild and restart on every edit; Ctrl-C stops everything it started.
//! - `cargo xtask test [--no-e2e]`: every test (unit, integration against a real Redis, SQLite and
//!   PostgreSQL that it starts, Playwright in Chromium), then one summary line.
//! - `cargo xtask build [--release]`: the site (wasm, JS, CSS) and the server binaries.
//! - `cargo xtask bench NAME`: run a benchmark.

mod dev;
mod proc;
mod services;
mod site;
mod test;
mod tools;

use anyhow::{Result, bail};

fn main() {
    if let Err(error) = run() {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let profile = if flag("--release") { site::Profile::Release } else { site::Profile::Dev };
    match args.first().map(String::as_str) {
        Some("dev") => dev::run(profile),
        Some("test") => test::run(!flag("--no-e2e")),
        Some("build") => {
            let project = site::Project::locate()?;
            tools::ensure_build_tools(&project, profile == site::Profile::Release)?;
            site::build_all(&project, profile)
        }
        Some("bench") => bench(args.get(1).map(String::as_str)),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  dev [--release]   start everything locally, rebuild on change\n  \
                 test [--no-e2e]   run every test\n  build [--release] build the site and the binaries\n  \
                 bench NAME        run a benchmark"
            );
            bail!("unknown or missing command")
        }
    }
}

/// Benchmarks, each a binary that prints its figures. None exist yet: they arrive with the issues
/// that name a figure (the message pipeline, broadcasts).
const BENCHES: &[(&str, &str, &str)] = &[];

fn bench(name: Option<&str>) -> Result<()> {
    let available: Vec<&str> = BENCHES.iter().map(|(n, _, _)| *n).collect();
    let Some(name) = name else { bail!("which benchmark? available: {}", list_or_none(&available)) };
    let Some((_, package, bin)) = BENCHES.iter().find(|(n, _, _)| *n == name) else {
        bail!("no benchmark named {name:?}; available: {}", list_or_none(&available))
    };
    let project = site::Project::locate()?;
    proc::run(project.cargo().args(["run", "--release", "-p", package, "--bin", bin]))
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() { "none yet".to_owned() } else { names.join(", ") }
}
