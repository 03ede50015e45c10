//! What a process measures about itself, and the open-files limit.

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};

/// This process's resident-set high-water mark (KiB) and CPU time (user +
/// system, seconds) so far.
///
/// On Linux the peak comes from `VmHWM` in `/proc/self/status`, the
/// high-water mark of this process's own memory map. `getrusage`'s
/// `ru_maxrss` would not do for a child: `std::process::Command` starts it
/// with vfork, and Linux carries the pre-exec map's peak (the parent's)
/// into the child's `ru_maxrss`. Elsewhere `ru_maxrss` is all there is.
pub fn own_usage() -> Result<(u64, f64), String> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(|e| format!("getrusage: {e}"))?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let cpu = seconds(usage.user_time()) + seconds(usage.system_time());
    if let Some(kib) = vm_hwm_kib() {
        return Ok((kib, cpu));
    }
    // ru_maxrss is in KiB on Linux, in bytes on macOS.
    let rss = u64::try_from(usage.max_rss()).unwrap_or(0);
    let rss_kib = if cfg!(target_os = "macos") {
        rss / 1024
    } else {
        rss
    };
    Ok((rss_kib, cpu))
}

/// `VmHWM` from `/proc/self/status`, in KiB, where there is one.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Makes sure this process (and the children it starts, which inherit the
/// limit) may open `needed` files, raising the soft limit up to the hard one
/// if it must. An error says how far short the hard limit is.
pub fn ensure_open_files(needed: u64) -> Result<(), String> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(NOFILE): {e}"))?;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        return Err(format!(
            "this needs about {needed} open files (a socket per connection on each side, plus \
             slack), but the open-files limit is {hard} (`ulimit -Hn`); lower --concurrency or \
             raise the limit"
        ));
    }
    setrlimit(Resource::RLIMIT_NOFILE, needed, hard)
        .map_err(|e| format!("raising the open-files limit to {needed}: {e}"))
}

/// Raises this process's open-files soft limit to its hard limit (at most
/// `cap`), for a server that cannot know how many clients will come.
pub fn raise_open_files(cap: u64) -> Result<(), String> {
    let (_, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(NOFILE): {e}"))?;
    ensure_open_files(hard.min(cap))
}

/// The open files a lab run at `concurrency` needs in one process: a
/// socket per connection and some slack for the runtime, stdio and the
/// listener.
pub fn files_needed(concurrency: usize) -> u64 {
    concurrency as u64 + 128
}
