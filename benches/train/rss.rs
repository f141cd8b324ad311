//! Peak memory of a real training run: the `mnist-nn` binary as a child process, its
//! maximum resident set size as the kernel accounts it (`wait4`'s `ru_maxrss`).

use std::path::Path;

/// Runs `mnist-nn` with `args` in `cwd` and returns its peak RSS in bytes; an error if
/// it cannot start or does not exit with status 0. `None` where the OS has no `wait4`
/// (Windows): the run is not made.
#[cfg(not(unix))]
pub fn peak_rss(_bin: &Path, _args: &[&str], _cwd: &Path) -> anyhow::Result<Option<u64>> {
    Ok(None)
}

/// Runs `mnist-nn` with `args` in `cwd` and returns its peak RSS in bytes; an error if
/// it cannot start or does not exit with status 0.
#[cfg(unix)]
pub fn peak_rss(bin: &Path, args: &[&str], cwd: &Path) -> anyhow::Result<Option<u64>> {
    use std::process::{Command, Stdio};

    let child = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if waited != pid {
        anyhow::bail!(
            "wait4 on {}: {}",
            bin.display(),
            std::io::Error::last_os_error()
        );
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        anyhow::bail!(
            "{} {} failed (wait status {status})",
            bin.display(),
            args.join(" ")
        );
    }
    // Linux reports ru_maxrss in KiB, macOS in bytes.
    let unit = if cfg!(target_os = "macos") { 1 } else { 1024 };
    Ok(Some(u64::try_from(usage.ru_maxrss)? * unit))
}
