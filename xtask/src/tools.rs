//! Installs what a build or a test run needs when it is missing. Every check is cheap, so a second
//! run goes straight to work.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::proc;
use crate::site::Project;

/// The rustup target and the wasm-bindgen CLI at the version Cargo.lock pins; with `wasm_opt`
/// also a wasm-opt recent enough for Leptos' output (release builds use it).
pub fn ensure_build_tools(project: &Project, wasm_opt: bool) -> Result<()> {
    ensure_wasm_target()?;
    ensure_wasm_bindgen(project)?;
    if wasm_opt {
        ensure_wasm_opt()?;
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = proc::output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        println!("xtask: installing the wasm32-unknown-unknown target");
        proc::run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    Ok(())
}

/// The version of a package in Cargo.lock.
pub fn locked_version(project: &Project, package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(project.root.join("Cargo.lock")).context("read Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"")
            && let Some(version) = lines.next().and_then(|l| l.trim().strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_owned());
        }
    }
    bail!("{package} is not in Cargo.lock")
}

/// The wasm-bindgen CLI that `cargo install` puts in cargo's bin folder (whether or not that folder
/// is on PATH), else the one on PATH.
pub fn wasm_bindgen_path() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    cargo_home
        .map(|home| home.join("bin").join("wasm-bindgen"))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("wasm-bindgen"))
}

fn ensure_wasm_bindgen(project: &Project) -> Result<()> {
    let wanted = locked_version(project, "wasm-bindgen")?;
    let found = proc::output(Command::new(wasm_bindgen_path()).arg("--version")).unwrap_or_default();
    if found.split_whitespace().nth(1) != Some(wanted.as_str()) {
        println!("xtask: installing wasm-bindgen-cli {wanted} (the version Cargo.lock pins; takes a few minutes once)");
        // --force: cargo may still list a binary that was removed or replaced.
        proc::run(Command::new("cargo").args(["install", "--force", "wasm-bindgen-cli", "--version", &wanted]))?;
    }
    Ok(())
}

/// Where the xtask keeps tools it installs outside cargo (npm's binaryen).
fn tools_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("balas").join("tools")
}

/// The wasm-opt binary to use. Debian's binaryen (version 108) is too old: its output fails to
/// hydrate. The npm package is current, so it is installed in the tools folder.
pub fn wasm_opt_path() -> PathBuf {
    tools_dir().join("node_modules").join(".bin").join("wasm-opt")
}

fn ensure_wasm_opt() -> Result<()> {
    if proc::output(Command::new(wasm_opt_path()).arg("--version")).is_some() {
        return Ok(());
    }
    let dir = tools_dir();
    std::fs::create_dir_all(&dir)?;
    println!("xtask: installing wasm-opt (npm package binaryen) into {}", dir.display());
    proc::run(
        Command::new("npm").args(["install", "--no-audit", "--no-fund", "--prefix"]).arg(&dir).arg("binaryen@132"),
    )
}

fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

/// Installs Debian packages, with sudo when not root.
fn apt_install(packages: &[&str]) -> Result<()> {
    println!("xtask: installing {} from the OS packages", packages.join(", "));
    // `env` passes DEBIAN_FRONTEND through sudo (which drops the caller's environment).
    let apt = |args: &[&str]| {
        let mut cmd = if proc::running_as_root() { Command::new("env") } else { Command::new("sudo") };
        if !proc::running_as_root() {
            cmd.arg("env");
        }
        cmd.args(["DEBIAN_FRONTEND=noninteractive", "apt-get"]).args(args);
        cmd
    };
    let has_lists = std::fs::read_dir("/var/lib/apt/lists").map(|d| d.count() > 2).unwrap_or(false);
    if !has_lists {
        proc::run(&mut apt(&["update", "-qq"]))?;
    }
    let install: Vec<&str> = ["install", "-y", "-qq"].into_iter().chain(packages.iter().copied()).collect();
    if proc::run(&mut apt(&install)).is_err() {
        // The package lists may be stale: refresh them once and retry.
        proc::run(&mut apt(&["update", "-qq"]))?;
        proc::run(&mut apt(&install))?;
    }
    Ok(())
}

pub fn ensure_redis() -> Result<()> {
    if !have("redis-server") {
        apt_install(&["redis-server"])?;
    }
    Ok(())
}

/// The folder with PostgreSQL's server programs (initdb, postgres, pg_isready).
pub fn ensure_postgres() -> Result<PathBuf> {
    let find = || -> Option<PathBuf> {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").exists())
            .collect();
        versions.sort_by_key(|p| p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()?.parse::<u32>().ok()));
        versions.pop()
    };
    if let Some(bin) = find() {
        return Ok(bin);
    }
    apt_install(&["postgresql"])?;
    find().context("PostgreSQL was installed but initdb was not found under /usr/lib/postgresql")
}

pub const CHROMIUM: &str = "/usr/bin/chromium";

pub fn ensure_chromium() -> Result<()> {
    if !Path::new(CHROMIUM).exists() {
        apt_install(&["chromium"])?;
    }
    Ok(())
}

/// The end-to-end tests' npm packages (Playwright's test runner; never its browser download).
pub fn ensure_e2e_packages(project: &Project) -> Result<()> {
    ensure_npm_packages(&project.root.join("end2end"), "the end-to-end test packages")
}

/// The Node peers the benchmarks compare against (Socket.io, BullMQ).
pub fn ensure_bench_peers(project: &Project) -> Result<()> {
    ensure_npm_packages(&project.root.join("bench").join("peers"), "the benchmark peers (Node)")
}

fn ensure_npm_packages(dir: &std::path::Path, what: &str) -> Result<()> {
    let dir = dir.to_path_buf();
    let installed = dir.join("node_modules").join(".package-lock.json");
    let lock = dir.join("package-lock.json");
    let fresh = match (std::fs::metadata(&installed), std::fs::metadata(&lock)) {
        (Ok(i), Ok(l)) => i.modified()? >= l.modified()?,
        _ => false,
    };
    if !fresh {
        println!("xtask: installing {what}");
        proc::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
        )?;
    }
    Ok(())
}
