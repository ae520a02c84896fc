//! The Leptos build, done here instead of by cargo-leptos (which takes over half an hour to install
//! on a small machine): the wasm library with the `hydrate` feature, wasm-bindgen, wasm-opt for
//! release, the CSS, then the server with the `ssr` feature. `LEPTOS_OUTPUT_NAME` comes from
//! `.cargo/config.toml`, so the server asks for exactly the files made here.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::{proc, tools};

pub const OUTPUT_NAME: &str = "balas";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Dev,
    Release,
}

/// The repository and where cargo puts what it builds.
pub struct Project {
    pub root: PathBuf,
    pub target_dir: PathBuf,
}

impl Project {
    pub fn locate() -> Result<Self> {
        let meta = proc::output(Command::new("cargo").args(["metadata", "--format-version", "1", "--no-deps"]))
            .context("cargo metadata failed")?;
        let meta: serde_json::Value = serde_json::from_str(&meta)?;
        let path =
            |key: &str| meta[key].as_str().map(PathBuf::from).with_context(|| format!("cargo metadata has no {key}"));
        Ok(Self { root: path("workspace_root")?, target_dir: path("target_directory")? })
    }

    /// A `cargo` command run from the repository root.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&self.root);
        cmd
    }

    pub fn site_root(&self) -> PathBuf {
        self.target_dir.join("site")
    }

    pub fn binary(&self, profile: Profile, name: &str) -> PathBuf {
        self.target_dir
            .join(match profile {
                Profile::Dev => "debug",
                Profile::Release => "release",
            })
            .join(name)
    }
}

/// The binaries `dev` runs: the web server and the workers.
pub const BINARIES: &[(&str, &str)] =
    &[("balas-server", "balas-server"), ("balas-workers", "balas-wa-worker"), ("balas-workers", "balas-ai-worker")];

/// Builds the browser bundle into `<target>/site/pkg`.
pub fn build_site(project: &Project, profile: Profile) -> Result<()> {
    let mut cargo = project.cargo();
    cargo.args(["build", "-p", "balas-frontend", "--lib", "--target", "wasm32-unknown-unknown"]);
    if profile == Profile::Release {
        cargo.args(["--profile", "wasm-release"]);
    }
    proc::run(&mut cargo)?;

    let wasm = project
        .target_dir
        .join("wasm32-unknown-unknown")
        .join(if profile == Profile::Release { "wasm-release" } else { "debug" })
        .join("balas_frontend.wasm");
    let pkg = project.site_root().join("pkg");
    std::fs::create_dir_all(&pkg)?;
    proc::run(
        Command::new(tools::wasm_bindgen_path())
            .args(["--target", "web", "--no-typescript", "--out-name", OUTPUT_NAME, "--out-dir"])
            .arg(&pkg)
            .arg(&wasm),
    )?;
    let bindgen_out = pkg.join(format!("{OUTPUT_NAME}_bg.wasm"));
    let final_wasm = pkg.join(format!("{OUTPUT_NAME}.wasm"));
    if profile == Profile::Release {
        proc::run(Command::new(tools::wasm_opt_path()).arg("-Oz").arg(&bindgen_out).arg("-o").arg(&final_wasm))?;
        std::fs::remove_file(&bindgen_out)?;
    } else {
        std::fs::rename(&bindgen_out, &final_wasm)?;
    }
    std::fs::copy(project.root.join("style").join("main.css"), pkg.join(format!("{OUTPUT_NAME}.css")))
        .context("copy style/main.css")?;
    copy_dir(&project.root.join("public"), &project.site_root())?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(()) };
    std::fs::create_dir_all(to)?;
    for entry in entries {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Builds the server and worker binaries.
pub fn build_binaries(project: &Project, profile: Profile) -> Result<()> {
    let mut cargo = project.cargo();
    cargo.arg("build");
    for (package, bin) in BINARIES {
        cargo.args(["-p", package, "--bin", bin]);
    }
    if profile == Profile::Release {
        cargo.arg("--release");
    }
    proc::run(&mut cargo)
}

pub fn build_all(project: &Project, profile: Profile) -> Result<()> {
    build_site(project, profile)?;
    build_binaries(project, profile)?;
    println!("xtask: built the site into {} and the binaries", project.site_root().display());
    Ok(())
}
