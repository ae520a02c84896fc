//! Running and stopping child processes.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Runs a command to the end; fails when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs a command and returns its standard output, or `None` when it cannot run or fails.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// The pids of the children alive now, so that a signal handler can stop them.
static CHILDREN: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn track(pid: u32, alive: bool) {
    if let Ok(mut children) = CHILDREN.lock() {
        children.retain(|p| *p != pid);
        if alive {
            children.push(pid);
        }
    }
}

/// Sends SIGTERM to every child still running (for a Ctrl-C or SIGTERM handler, where the guards'
/// drops never run).
pub fn terminate_children() {
    let pids = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
    for pid in pids {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL after a grace period) when dropped, so
/// that nothing the xtask started outlives it.
pub struct Guard {
    pub name: String,
    child: Option<Child>,
}

impl Guard {
    pub fn spawn(name: &str, cmd: &mut Command) -> Result<Self> {
        let child = cmd.spawn().with_context(|| format!("cannot start {name}: {}", describe(cmd)))?;
        track(child.id(), true);
        Ok(Self { name: name.to_owned(), child: Some(child) })
    }

    /// Waits for the process to end by itself.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().context("the process was already stopped")?;
        let status = child.wait()?;
        track(child.id(), false);
        Ok(status)
    }

    /// The process' standard output, when it was piped.
    pub fn stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    /// The process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        track(child.id(), false);
        if child.try_wait().ok().flatten().is_none() {
            // SIGTERM lets Redis, PostgreSQL and Balas shut down cleanly; without a `kill` program,
            // fall back to SIGKILL at once.
            if !Command::new("kill").args(["-TERM", &child.id().to_string()]).status().is_ok_and(|s| s.success()) {
                let _ = child.kill();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `ready` until it answers true, the process dies, or the deadline passes.
pub fn wait_until(what: &str, guard: &mut Guard, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(status) = guard.exited() {
            bail!("{what} exited before it was ready ({status})");
        }
        if Instant::now() > deadline {
            bail!("{what} was not ready within {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether this process runs as root.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether an HTTP GET of `path` on 127.0.0.1:`port` answers 200.
pub fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
