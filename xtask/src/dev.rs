//! `cargo xtask dev`: everything on one machine, rebuilt and restarted on every edit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};

use crate::proc::{self, Guard};
use crate::services;
use crate::site::{self, BINARIES, Profile, Project};
use crate::tools;

/// Folders whose changes need a new browser bundle (and a new server, which renders the same pages).
const SITE_INPUTS: &[&str] = &["domain", "app", "frontend", "style", "locales", "public"];
/// Folders whose changes need only new binaries.
const SERVER_INPUTS: &[&str] = &["storage", "bus", "backend", "server", "workers", "migrations"];

pub fn run(profile: Profile) -> Result<()> {
    let project = Project::locate()?;
    // wasm-opt too, so that a release build (`--release`) works at once later.
    tools::ensure_build_tools(&project, true)?;
    tools::ensure_redis()?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("install the Ctrl-C handler")?;

    let data = project.root.join("data");
    std::fs::create_dir_all(&data)?;
    let redis_port = port_from_env("BALAS_DEV_REDIS_PORT", 6390)?;
    let _redis = services::redis(&data.join("redis"), redis_port, true)?;
    let http_port = port_from_env("BALAS_DEV_PORT", 3000)?;
    let env = DevEnv { data: data.clone(), redis_url: format!("redis://127.0.0.1:{redis_port}"), http_port };
    // A fake AI provider (it echoes the customer; "complain" makes it hand over), so that the AI
    // agent can be tried without a provider's key. Built and started once: it is not Balas.
    let llm_port = port_from_env("BALAS_DEV_FAKELLM_PORT", 3999)?;
    proc::run(project.cargo().args(["build", "-p", "balas-fakellm", "--bin", "balas-fakellm"]))?;
    let mut fake_llm = Command::new(project.binary(Profile::Dev, "balas-fakellm"));
    let _fake_llm =
        Guard::spawn("balas-fakellm", fake_llm.arg(llm_port.to_string()).stdout(std::process::Stdio::null()))?;

    let mut snapshot = Snapshot::take(&project.root);
    let mut rebuild_site = true;
    while !stop.load(Ordering::SeqCst) {
        let built =
            if rebuild_site { site::build_all(&project, profile) } else { site::build_binaries(&project, profile) };
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let mut children = Vec::new();
        match built.and_then(|()| start(&project, profile, &env)) {
            Ok(started) => {
                children = started;
                println!(
                    "\n  Balas is running:\n    dashboard  http://127.0.0.1:{http_port}/\n    phone      http://127.0.0.1:{http_port}/phone (play a customer on the sandbox network)\n    sandbox    http://127.0.0.1:{http_port}/sandbox/api (simulated customers' phones, over HTTP)\n    fake AI    http://127.0.0.1:{llm_port}/v1 (any key; an echo model to try the AI agent with)\n    data       {}\n    Redis      {}\n  Edit the code and it rebuilds; Ctrl-C stops everything.\n",
                    data.display(),
                    env.redis_url
                );
            }
            Err(error) => eprintln!("xtask: {error:#}\nxtask: waiting for a change to try again"),
        }
        // Wait for an edit (or Ctrl-C), watching the children meanwhile.
        let changed = loop {
            if stop.load(Ordering::SeqCst) {
                break Vec::new();
            }
            std::thread::sleep(Duration::from_millis(400));
            for child in &mut children {
                if let Some(status) = child.exited() {
                    eprintln!("xtask: {} exited ({status}); fix the problem and save a file to restart it", child.name);
                }
            }
            children.retain_mut(|c| c.exited().is_none());
            let next = Snapshot::take(&project.root);
            let changed = snapshot.changed(&next);
            if !changed.is_empty() {
                snapshot = next;
                break changed;
            }
        };
        for mut child in children {
            child.stop();
        }
        if !changed.is_empty() {
            println!(
                "xtask: changed: {}",
                changed.iter().take(5).map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            );
            rebuild_site =
                changed.iter().any(|p| SITE_INPUTS.iter().any(|d| p.starts_with(d)) || p.ends_with("Cargo.toml"));
        }
    }
    println!("xtask: stopped everything");
    Ok(())
}

struct DevEnv {
    data: PathBuf,
    redis_url: String,
    http_port: u16,
}

fn port_from_env(name: &str, default: u16) -> Result<u16> {
    let port = std::env::var(name).ok().and_then(|p| p.parse().ok()).unwrap_or(default);
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
        Ok(port)
    } else {
        let free = proc::free_port()?;
        println!("xtask: port {port} is busy, using {free} (set {name} to choose)");
        Ok(free)
    }
}

fn start(project: &Project, profile: Profile, env: &DevEnv) -> Result<Vec<Guard>> {
    let mut children = Vec::new();
    for (_, bin) in BINARIES {
        let mut cmd = Command::new(project.binary(profile, bin));
        cmd.env("BALAS_LISTEN", format!("127.0.0.1:{}", env.http_port))
            .env("BALAS_DATABASE_URL", format!("sqlite://{}", env.data.join("balas.db").display()))
            .env("BALAS_REDIS_URL", &env.redis_url)
            .env("BALAS_SITE_ROOT", project.site_root())
            .env("BALAS_PUBLIC_URL", format!("http://127.0.0.1:{}", env.http_port))
            // The simulated WhatsApp network, with a little latency, so Balas can be tried
            // without a phone.
            .env("BALAS_SANDBOX", "true")
            .env("BALAS_SANDBOX_LATENCY_MS", "150")
            // A model or an ERP on this machine (Ollama on localhost:11434, say) may be tried.
            .env("BALAS_ALLOW_PRIVATE_URLS", "true")
            .current_dir(&project.root);
        children.push(Guard::spawn(bin, &mut cmd)?);
    }
    if let Some(server) = children.first_mut() {
        let port = env.http_port;
        proc::wait_until("balas-server", server, Duration::from_secs(60), || proc::http_ok(port, "/readyz"))?;
    }
    Ok(children)
}

/// Modification times of the source files, to notice edits.
struct Snapshot(BTreeMap<PathBuf, SystemTime>);

impl Snapshot {
    fn take(root: &Path) -> Self {
        let mut files = BTreeMap::new();
        for dir in SITE_INPUTS.iter().chain(SERVER_INPUTS) {
            walk(root, Path::new(dir), &mut files);
        }
        if let Ok(meta) = std::fs::metadata(root.join("Cargo.toml")) {
            files.insert(PathBuf::from("Cargo.toml"), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        }
        Self(files)
    }

    fn changed(&self, next: &Snapshot) -> Vec<PathBuf> {
        let mut changed: Vec<PathBuf> =
            next.0.iter().filter(|(path, time)| self.0.get(*path) != Some(time)).map(|(p, _)| p.clone()).collect();
        changed.extend(self.0.keys().filter(|p| !next.0.contains_key(*p)).cloned());
        changed
    }
}

fn walk(root: &Path, relative: &Path, files: &mut BTreeMap<PathBuf, SystemTime>) {
    let Ok(entries) = std::fs::read_dir(root.join(relative)) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        let path = relative.join(&name);
        match entry.metadata() {
            Ok(meta) if meta.is_dir() => walk(root, &path, files),
            Ok(meta) => {
                files.insert(path, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
            }
            Err(_) => {}
        }
    }
}
