//! One trainer per run directory. A process that writes a run (a new run, `--resume`,
//! the page's training, `import`) holds an exclusive lock on the run's `train.lock`
//! until it ends; a second one is refused with [`Error::RunBusy`] before it touches a
//! file, rather than interleaving its checkpoints with the first's (each removes the
//! files of the other's previous checkpoint) and its rows in one `metrics.csv`.
//!
//! The lock is the operating system's (`flock` on Unix, `LockFileEx` on Windows, through
//! [`std::fs::File::try_lock`]): it goes with the process, so a run killed with
//! `kill -9` leaves no stale lock to clear by hand. The file itself stays, holding the
//! last trainer's process id for the message a refused one gets. On a file system
//! without locks (some network mounts) training goes on unlocked.
//!
//! ```
//! # fn main() -> mnist_nn::Result<()> {
//! use mnist_nn::run_lock::RunLock;
//!
//! let dir = std::env::temp_dir().join(format!("mnist-nn-lock-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let lock = RunLock::acquire(&dir)?;
//! assert!(RunLock::held(&dir));
//! assert!(RunLock::acquire(&dir).is_err(), "one trainer at a time");
//! drop(lock);
//! assert!(!RunLock::held(&dir));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::run_dir::files;

/// How long [`RunLock::acquire`] keeps trying: [`RunLock::held`] takes the lock, shared,
/// for an instant (the page asks it of every run it lists), and a trainer starting in
/// that instant must not be refused for it.
const PATIENCE: Duration = Duration::from_secs(2);

/// The exclusive lock of a run directory, released when dropped (or when the process
/// ends, however it ends).
#[derive(Debug)]
pub struct RunLock {
    /// The open, locked `train.lock`; `None` where the file system has no locks.
    _file: Option<File>,
}

impl RunLock {
    /// Locks `dir` (an existing directory) for this process, writing its process id in
    /// `train.lock`. [`Error::RunBusy`] when another trainer holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(files::LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::RunBusy {
                        dir: dir.to_path_buf(),
                        pid: holder(&mut file),
                    });
                }
                // No locks on this file system: nothing to hold.
                Err(TryLockError::Error(_)) => return Ok(Self { _file: None }),
            }
        }
        let id = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(id.as_bytes()))
            .map_err(|e| Error::io(&path, e))?;
        Ok(Self { _file: Some(file) })
    }

    /// Whether a trainer (this process or another) holds `dir`'s lock now.
    pub fn held(dir: &Path) -> bool {
        let Ok(file) = File::open(dir.join(files::LOCK)) else {
            return false;
        };
        // A shared lock taken here is released as `file` is dropped.
        matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
    }
}

/// The process id the holder wrote in the lock file, if it has written it yet.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
