//! `cargo xtask test`: every test against real services, and one summary line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::proc::{self, Guard};
use crate::services::{self, TempDir};
use crate::site::{self, Profile, Project};
use crate::tools;

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
}

pub fn run(e2e: bool) -> Result<()> {
    let started = Instant::now();
    let project = Project::locate()?;
    tools::ensure_redis()?;
    let pg_bin = tools::ensure_postgres()?;
    if e2e {
        tools::ensure_build_tools(&project, false)?;
        tools::ensure_chromium()?;
        tools::ensure_e2e_packages(&project)?;
    }

    // Stopped from outside (Ctrl-C, or CI's SIGTERM on a timeout): stop everything this process
    // group started (Redis, PostgreSQL, the server, cargo), since the guards below never get to.
    ctrlc::set_handler(|| {
        eprintln!("xtask: interrupted; stopping the test services");
        proc::terminate_children();
        std::process::exit(130);
    })?;

    let tmp = TempDir::new("balas-test")?;
    let redis_port = proc::free_port()?;
    let _redis = services::redis(&tmp.0.join("redis"), redis_port, false)?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let (_postgres, postgres_url) = services::postgres(&pg_bin, &tmp.0.join("postgres"), proc::free_port()?)?;
    println!("xtask: test services up: Redis {redis_url}, PostgreSQL {postgres_url}");

    let mut problems = Vec::new();
    if let Err(error) = shipped_without_test_features(&project) {
        problems.push(format!("{error:#}"));
    }
    let cargo = cargo_tests(&project, &redis_url, &postgres_url).unwrap_or_else(|e| {
        problems.push(format!("cargo tests: {e:#}"));
        Counts::default()
    });
    let mut playwright = Counts::default();
    if e2e {
        match end_to_end(&project, &tmp, redis_port) {
            Ok(counts) => playwright = counts,
            Err(e) => problems.push(format!("end-to-end tests: {e:#}")),
        }
    }

    for problem in &problems {
        eprintln!("xtask: {problem}");
    }
    let total = Counts { passed: cargo.passed + playwright.passed, failed: cargo.failed + playwright.failed };
    println!(
        "summary: {} passed, {} failed (cargo: {} passed, {} failed; playwright: {}) in {} s",
        total.passed,
        total.failed,
        cargo.passed,
        cargo.failed,
        if e2e {
            format!("{} passed, {} failed", playwright.passed, playwright.failed)
        } else {
            "skipped by --no-e2e".to_owned()
        },
        started.elapsed().as_secs()
    );
    if total.failed > 0 || !problems.is_empty() {
        bail!("tests failed");
    }
    Ok(())
}

/// Runs `cargo test` for the default members, echoing its output and adding up its result lines.
fn cargo_tests(project: &Project, redis_url: &str, postgres_url: &str) -> Result<Counts> {
    let mut child = Guard::spawn(
        "cargo test",
        project
            .cargo()
            .args(["test", "--no-fail-fast"])
            .env("BALAS_TEST_REDIS_URL", redis_url)
            .env("BALAS_TEST_POSTGRES_URL", postgres_url)
            .stdout(Stdio::piped()),
    )?;
    let mut counts = Counts::default();
    let mut suites = 0;
    for line in BufReader::new(child.stdout().context("cargo test stdout")?).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            suites += 1;
            counts.passed += number_before(rest, " passed");
            counts.failed += number_before(rest, " failed");
        }
    }
    let status = child.wait()?;
    if !status.success() && counts.failed == 0 {
        bail!("cargo test failed before running every test ({status}); see the output above");
    }
    if suites == 0 {
        bail!("cargo test ran no test suites");
    }
    Ok(counts)
}

/// The shipped binaries must never trust a fake WhatsApp server: the client's certificate bypass
/// may only be switched on by test crates (dev-dependencies, the fakewa crate), never by what
/// `cargo xtask build` builds.
fn shipped_without_test_features(project: &Project) -> Result<()> {
    let mut tree = project.cargo();
    tree.args(["tree", "-p", "balas-server", "-p", "balas-workers", "-e", "features,no-dev", "--prefix", "none"]);
    let features = proc::output(&mut tree).context("cargo tree did not run")?;
    if !features.contains("whatsapp-rust") {
        bail!("cargo tree printed no whatsapp-rust features; the check of the shipped binaries did not run");
    }
    if features.contains("danger-skip-cert-chain-verify") {
        bail!("the shipped binaries would skip WhatsApp's certificate check: a test-only feature leaked into them");
    }
    println!("xtask: the shipped binaries check WhatsApp's certificates (no test-only features)");
    Ok(())
}

fn number_before(text: &str, label: &str) -> u64 {
    text.find(label).and_then(|end| text[..end].rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()).unwrap_or(0)
}

/// Builds the site and the server, starts the server on a fresh SQLite file, and runs Playwright.
fn end_to_end(project: &Project, tmp: &TempDir, redis_port: u16) -> Result<Counts> {
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let redis_url = redis_url.as_str();
    site::build_all(project, Profile::Dev)?;
    let port = proc::free_port()?;
    let dir = tmp.0.join("e2e");
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("server.log");
    std::fs::File::create(&log)?;
    let pid_file = dir.join("server.pid");
    let server_command = {
        let (binary, site_root, dir, log) =
            (project.binary(Profile::Dev, "balas-server"), project.site_root(), dir.clone(), log.clone());
        let redis_url = redis_url.to_owned();
        move || -> Result<Command> {
            let mut command = Command::new(&binary);
            command
                .env("BALAS_LISTEN", format!("127.0.0.1:{port}"))
                .env("BALAS_DATABASE_URL", format!("sqlite://{}", dir.join("balas.db").display()))
                .env("BALAS_REDIS_URL", &redis_url)
                .env("BALAS_REDIS_PREFIX", "e2e")
                .env("BALAS_SANDBOX", "true")
                // The fake AI provider and webhook receivers run on this machine.
                .env("BALAS_ALLOW_PRIVATE_URLS", "true")
                .env("BALAS_SITE_ROOT", &site_root)
                .env("RUST_LOG", "info")
                .current_dir(&dir)
                .stdout(std::fs::File::options().append(true).open(&log)?)
                .stderr(Stdio::inherit());
            Ok(command)
        }
    };
    let mut server = Guard::spawn("balas-server", &mut server_command()?)?;
    proc::wait_until("balas-server", &mut server, Duration::from_secs(60), || proc::http_ok(port, "/readyz"))?;
    // Supervise the server like a process manager would: a spec may kill it (its id is in
    // BALAS_E2E_SERVER_PID_FILE) to prove that browsers reconnect and catch up; it comes back.
    let supervisor = Supervisor::start(server, server_command, pid_file.clone())?;
    // A local fake WhatsApp server, and the WhatsApp worker built to trust it (a test build of the
    // shipped worker; built on its own so that its test-only feature reaches nothing shipped).
    proc::run(project.cargo().args(["build", "-p", "balas-fakewa", "-p", "balas-fakellm", "--bins"]))?;
    let (fakewa_port, fakewa_control) = (proc::free_port()?, proc::free_port()?);
    let mut fakewa = Guard::spawn(
        "balas-fakewa",
        Command::new(project.binary(Profile::Dev, "balas-fakewa"))
            .env("FAKEWA_PORT", fakewa_port.to_string())
            .env("FAKEWA_CONTROL_PORT", fakewa_control.to_string())
            .current_dir(&dir),
    )?;
    proc::wait_until("balas-fakewa", &mut fakewa, Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", fakewa_control)).is_ok()
    })?;
    // A local fake OpenAI-compatible provider for the AI agent's spec.
    let fakellm_port = proc::free_port()?;
    let mut fakellm = Guard::spawn(
        "balas-fakellm",
        Command::new(project.binary(Profile::Dev, "balas-fakellm")).arg(fakellm_port.to_string()).current_dir(&dir),
    )?;
    proc::wait_until("balas-fakellm", &mut fakellm, Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", fakellm_port)).is_ok()
    })?;
    let mut workers = vec![fakewa, fakellm];
    for bin in ["balas-e2e-wa-worker", "balas-ai-worker"] {
        let mut worker = Guard::spawn(
            bin,
            Command::new(project.binary(Profile::Dev, bin))
                .env("BALAS_REDIS_URL", redis_url)
                .env("BALAS_REDIS_PREFIX", "e2e")
                .env("BALAS_DATABASE_URL", format!("sqlite://{}", dir.join("balas.db").display()))
                .env("BALAS_SANDBOX", "true")
                .env("BALAS_ALLOW_PRIVATE_URLS", "true")
                .env("BALAS_WHATSAPP_URL", format!("ws://127.0.0.1:{fakewa_port}/ws/chat"))
                .env("BALAS_WHATSAPP_VERSION", "2.3000.1023")
                .env("RUST_LOG", "warn")
                .current_dir(&dir),
        )?;
        // The fake servers are not workers: they announce nothing.
        let announced = workers.len() - 1;
        proc::wait_until(bin, &mut worker, Duration::from_secs(30), || {
            services::redis_reply(redis_port, "HLEN e2e:workers").as_deref() == Some(&format!(":{announced}"))
        })?;
        workers.push(worker);
    }

    let report = dir.join("playwright.json");
    let status = Guard::spawn(
        "playwright",
        Command::new("npx")
            .args(["playwright", "test"])
            .current_dir(project.root.join("end2end"))
            .env("BALAS_E2E_URL", format!("http://127.0.0.1:{port}"))
            .env("BALAS_E2E_SERVER_PID_FILE", &pid_file)
            .env("BALAS_E2E_FAKEWA", format!("http://127.0.0.1:{fakewa_control}"))
            .env("BALAS_E2E_FAKELLM", format!("http://127.0.0.1:{fakellm_port}/v1"))
            .env("PLAYWRIGHT_JSON_OUTPUT_FILE", &report),
    )?
    .wait()?;
    for mut worker in workers {
        worker.stop();
    }
    supervisor.stop();
    let counts = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .map(|json| {
            let stat = |key: &str| json["stats"][key].as_u64().unwrap_or(0);
            Counts { passed: stat("expected") + stat("flaky"), failed: stat("unexpected") }
        });
    match counts {
        Some(counts) if status.success() || counts.failed > 0 => {
            if counts.failed > 0 {
                eprintln!("xtask: the server's log is in {} until this run ends; its tail:", log.display());
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                for line in &lines[lines.len().saturating_sub(40)..] {
                    eprintln!("  {line}");
                }
            }
            Ok(counts)
        }
        _ => bail!("playwright failed without a report ({status})"),
    }
}

/// Keeps a server running: starts it again whenever it exits, until stopped. The thread waits on
/// the process itself; stopping sets the flag, then ends the process the pid file names.
struct Supervisor {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pid_file: std::path::PathBuf,
    thread: std::thread::JoinHandle<()>,
}

impl Supervisor {
    fn start(
        first: Guard,
        command: impl Fn() -> Result<Command> + Send + 'static,
        pid_file: std::path::PathBuf,
    ) -> Result<Self> {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let pids = pid_file.clone();
        std::fs::write(&pid_file, first.id().map(|id| id.to_string()).unwrap_or_default())?;
        let thread = std::thread::spawn(move || {
            let mut server = first;
            loop {
                let _ = server.wait();
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                eprintln!("xtask: balas-server exited; starting it again");
                match command().and_then(|mut command| Guard::spawn("balas-server", &mut command)) {
                    Ok(mut next) => {
                        // The pid file first, then the flag: `stop` reads them the other way round,
                        // so one of the two sees the other's write.
                        let _ = std::fs::write(&pids, next.id().map(|id| id.to_string()).unwrap_or_default());
                        if stopping.load(Ordering::SeqCst) {
                            next.stop();
                            return;
                        }
                        server = next;
                    }
                    Err(error) => {
                        eprintln!("xtask: cannot start balas-server again: {error:#}");
                        return;
                    }
                }
            }
        });
        Ok(Self { stop, pid_file, thread })
    }

    fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
        let _ = self.thread.join();
    }
}
