//! The build id a sweep record carries (see `sweep::Build`): what makes two
//! builds' trace hashes comparable. From the workspace's git commit and
//! `Cargo.lock`, the compiler's version and the profile; never a hash of
//! the executable (every job of a CI matrix builds its own).
//!
//! The workspace is the one being built: the nearest folder above the
//! build's output folder (`target/` sits in the workspace that builds it)
//! that holds a `Cargo.lock`, or else above this crate. So a user who
//! depends on this crate by path or from a registry gets the id of their
//! own commit and lock file, not ours. (With `CARGO_TARGET_DIR` outside the
//! workspace the fallback finds this crate's workspace: set
//! `ASYNC_PATTERNS_SIM_BUILD_ID` at build time to name the build yourself;
//! it replaces the whole id.) Behaviour that changed without a commit is
//! caught by the sweep record's probe (`sweep::SweepHeader::probes`).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ASYNC_PATTERNS_SIM_BUILD_ID");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let root = workspace(&out).or_else(|| workspace(&manifest));

    let lock = root.as_ref().and_then(|r| {
        let file = r.join("Cargo.lock");
        println!("cargo:rerun-if-changed={}", file.display());
        std::fs::read(&file).ok()
    });
    let lock = lock.map_or("none".to_string(), |bytes| {
        let mut h = std::hash::DefaultHasher::new();
        bytes.hash(&mut h);
        format!("{:016x}", h.finish())
    });
    let commit = root
        .as_ref()
        .and_then(|r| git(r, &["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "none".to_string());
    if let Some(dir) = root
        .as_ref()
        .and_then(|r| git(r, &["rev-parse", "--absolute-git-dir"]))
    {
        // HEAD moves on a checkout; logs/HEAD on every commit.
        for file in ["HEAD", "logs/HEAD"] {
            let path = Path::new(&dir).join(file);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "rustc unknown".into());
    let profile = format!(
        "{} opt-level={} debug-assertions={}",
        std::env::var("PROFILE").unwrap_or_default(),
        std::env::var("OPT_LEVEL").unwrap_or_default(),
        std::env::var("CARGO_CFG_DEBUG_ASSERTIONS").is_ok()
    );
    let summary = format!("commit {commit}; Cargo.lock {lock}; {version}; {profile}");
    let id = std::env::var("ASYNC_PATTERNS_SIM_BUILD_ID").unwrap_or_else(|_| {
        let mut h = std::hash::DefaultHasher::new();
        summary.hash(&mut h);
        format!("{:016x}", h.finish())
    });
    println!("cargo:rustc-env=ASYNC_PATTERNS_SIM_BUILD_ID={id}");
    println!("cargo:rustc-env=ASYNC_PATTERNS_SIM_BUILD={summary}");
}

/// The nearest folder at or above `from` that holds a `Cargo.lock`.
fn workspace(from: &Path) -> Option<PathBuf> {
    from.ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .map(Path::to_path_buf)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}
