//! Developer commands. Run from anywhere in the repository:
//!
//! - `cargo xtask dev [--release]`: install what is missing, start Redis and Balas on SQLite under
//!   `data/`, rebuild and restart on every edit; Ctrl-C stops everything it started.
//! - `cargo xtask test [--no-e2e]`: every test (unit, integration against a real Redis, SQLite and
//!   PostgreSQL that it starts, Playwright in Chromium), then one summary line.
//! - `cargo xtask build [--release]`: the site (wasm, JS, CSS) and the server binaries.
//! - `cargo xtask bench NAME [--json] [options]`: run a benchmark (pipeline, queue, ratelimit, inbox,
//!   sessions, contacts) beside its peer, where it has one.

mod dev;
mod proc;
mod services;
mod site;
mod test;
mod tools;

use anyhow::{Result, bail};
use std::process::Command;

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
        Some("bench") => bench(args.get(1).map(String::as_str), args.get(2..).unwrap_or_default()),
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

/// Benchmarks: the names `balas-bench` knows (see `bench/src/main.rs` for each one's options).
const BENCHES: &[&str] = &["pipeline", "queue", "ratelimit", "inbox", "sessions", "contacts", "broadcast", "ai"];

/// Builds the benchmarks in release mode, starts a Redis of their own (no persistence, as in
/// `../shared/BASELINES.md`), installs the Node peers, and runs `balas-bench NAME ARGS…`.
fn bench(name: Option<&str>, rest: &[String]) -> Result<()> {
    let Some(name) = name else { bail!("which benchmark? available: {}", list_or_none(BENCHES)) };
    if !BENCHES.contains(&name) {
        bail!("no benchmark named {name:?}; available: {}", list_or_none(BENCHES))
    }
    let project = site::Project::locate()?;
    tools::ensure_redis()?;
    tools::ensure_bench_peers(&project)?;
    let tmp = services::TempDir::new("balas-bench")?;
    let port = proc::free_port()?;
    let _redis = services::redis(&tmp.0.join("redis"), port, false)?;
    if name == "inbox" {
        // The inbox benchmark drives the release site in Chromium through the end-to-end tests'
        // Playwright. (The site goes where every build puts it: a running `dev` or test server gets
        // the release bundle.)
        tools::ensure_build_tools(&project, true)?;
        tools::ensure_chromium()?;
        tools::ensure_e2e_packages(&project)?;
        site::build_site(&project, site::Profile::Release)?;
    }
    // The contacts benchmark measures PostgreSQL too (and `ai --postgres` runs on it), on a
    // throwaway cluster of its own.
    let postgres = if name == "contacts" || (name == "ai" && rest.iter().any(|a| a == "--postgres")) {
        let bin = tools::ensure_postgres()?;
        Some(services::postgres(&bin, &tmp.0.join("postgres"), proc::free_port()?)?)
    } else {
        None
    };
    // The benchmarks run the server and the workers as processes of their own. One build for all
    // of them: built apart, cargo unifies features differently and compiles the app twice.
    proc::run(project.cargo().args([
        "build",
        "--release",
        "-p",
        "balas-server",
        "-p",
        "balas-workers",
        "-p",
        "balas-bench",
        "--bins",
    ]))?;
    proc::run(
        Command::new(project.binary(site::Profile::Release, "balas-bench"))
            .current_dir(&project.root)
            .arg(name)
            .args(rest)
            .env("BALAS_BENCH_REDIS_URL", format!("redis://127.0.0.1:{port}"))
            .env("BALAS_BENCH_POSTGRES_URL", postgres.as_ref().map(|(_, url)| url.as_str()).unwrap_or_default())
            // The servers that benchmarks start serve the built site from here.
            .env("BALAS_SITE_ROOT", project.site_root()),
    )
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() { "none yet".to_owned() } else { names.join(", ") }
}
