//! Redis and PostgreSQL, started as children of the xtask on loopback.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::proc::{self, Guard};

/// Starts `redis-server` on `port` with its data in `dir`. `persist` keeps an append-only file (for
/// `dev`, so data survives restarts); tests run without persistence.
pub fn redis(dir: &Path, port: u16, persist: bool) -> Result<Guard> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Command::new("redis-server");
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--daemonize", "no", "--protected-mode", "yes"])
        .arg("--dir")
        .arg(dir)
        .args(["--logfile", "redis.log"]);
    if persist {
        cmd.args(["--appendonly", "yes", "--appendfsync", "everysec", "--save", "60 1"]);
    } else {
        cmd.args(["--appendonly", "no", "--save", ""]);
    }
    cmd.stdout(Stdio::null());
    let mut guard = Guard::spawn("redis-server", &mut cmd)?;
    proc::wait_until("redis-server", &mut guard, Duration::from_secs(20), || redis_pings(port))
        .with_context(|| format!("see {}", dir.join("redis.log").display()))?;
    Ok(guard)
}

fn redis_pings(port: u16) -> bool {
    redis_reply(port, "PING").as_deref() == Some("+PONG")
}

/// Sends one inline command to Redis and returns the first line of the reply.
pub fn redis_reply(port: u16, command: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read_exact(&mut byte).is_ok() && byte[0] != b'\n' {
        reply.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&reply).trim_end().to_owned())
}

/// A command that runs as the `postgres` user when we are root (PostgreSQL refuses to run as root).
/// The process is started directly under that user, so a guard holds PostgreSQL's own pid.
fn as_pg_user(program: &Path) -> Result<Command> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    if proc::running_as_root() {
        let id = |flag: &str| -> Result<u32> {
            proc::output(Command::new("id").args([flag, "postgres"]))
                .and_then(|id| id.trim().parse().ok())
                .context("PostgreSQL must run as the postgres user, and there is none")
        };
        cmd.uid(id("-u")?).gid(id("-g")?);
    }
    Ok(cmd)
}

/// A throwaway PostgreSQL cluster in `dir`, listening on 127.0.0.1:`port`, trusting local
/// connections, tuned for tests (no fsync). Returns the guard and an admin URL.
pub fn postgres(bin: &Path, dir: &Path, port: u16) -> Result<(Guard, String)> {
    let data = dir.join("data");
    std::fs::create_dir_all(dir)?;
    if proc::running_as_root() {
        proc::run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir))?;
    }
    proc::run(
        as_pg_user(&bin.join("initdb"))?
            .args(["--auth=trust", "--username=balas", "--encoding=UTF8", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null()),
    )?;
    let mut cmd = as_pg_user(&bin.join("postgres"))?;
    cmd.arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300"])
        .arg("-k")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("postgres.log"))?);
    let mut guard = Guard::spawn("postgres", &mut cmd)?;
    let isready = bin.join("pg_isready");
    proc::wait_until("postgres", &mut guard, Duration::from_secs(30), || {
        Command::new(&isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "balas", "-d", "postgres"])
            .status()
            .is_ok_and(|s| s.success())
    })
    .with_context(|| format!("see {}", dir.join("postgres.log").display()))?;
    Ok((guard, format!("postgres://balas@127.0.0.1:{port}/postgres")))
}

/// A folder under the system temp dir that is removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(stem: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("{stem}-{}-{}", std::process::id(), proc::free_port()?));
        std::fs::create_dir_all(&path)?;
        // Readable by the postgres user when we are root.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
