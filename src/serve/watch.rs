//! The runs of a directory (`serve --watch DIR`, by default `artifacts/`): listed, read
//! (config, summary, every `metrics.csv` row), and followed while another process
//! trains them: a viewer's stream polls the run's `metrics.csv` every [`POLL`] and
//! sends the rows added since, and `summary.json` when it appears or changes.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::events::{EventStream, QUEUE, encode};
use crate::logging::{Status, whole_lines};
use crate::run_dir::files;
use crate::run_lock::RunLock;

/// How often a followed run's files are looked at (only the bytes added since are
/// read).
pub const POLL: Duration = Duration::from_millis(500);

/// One run in `GET /api/runs`.
#[derive(Debug, Clone, Serialize)]
pub struct RunEntry {
    /// The directory's name.
    pub name: String,
    /// `training` while a process trains it (it holds the run's lock, see
    /// [`crate::run_lock`]), else `summary.json`'s status, `unfinished` (killed, or
    /// written by a version without locks), or `unreadable` (its `config.toml` does not
    /// load, or its `summary.json` is not JSON: [`RunEntry::problem`] says why).
    pub status: String,
    /// Why the run is `unreadable`: its config's error, naming the file and key, or its
    /// summary's.
    pub problem: Option<String>,
    /// Epochs with a row in `metrics.csv`.
    pub epochs_done: usize,
    /// Epochs the config asks for (`None` when it does not load, or the run was
    /// imported).
    pub epochs: Option<usize>,
    /// The last test accuracy logged, else the summary's (an imported run's).
    pub test_accuracy: Option<f64>,
    /// When `metrics.csv` last changed (Unix seconds).
    pub modified: f64,
    /// Being trained now (here or by another process).
    pub live: bool,
}

/// A `metrics.csv` row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// Gradient step.
    pub step: u64,
    /// e.g. `train/loss`.
    pub tag: String,
    /// The scalar.
    pub value: f64,
}

/// Whether `name` may name a run under the directory: one path component of letters,
/// digits, `-`, `_` and `.`, not starting with a dot (so never `..` or a path).
pub fn valid_name(name: &str) -> bool {
    name.len() <= 128 && crate::config::valid_name(name)
}

/// The directory of run `name` under `root`, if the name is valid and it is a run.
pub fn run_path(root: &Path, name: &str) -> Result<PathBuf, (u16, String)> {
    if !valid_name(name) {
        return Err((
            400,
            format!("{name:?} is not a run name (letters, digits, '-', '_' and '.')"),
        ));
    }
    let dir = root.join(name);
    if !is_run(&dir) {
        return Err((404, format!("no run {name:?} in {}", root.display())));
    }
    Ok(dir)
}

/// The runs under `root`, newest first.
pub fn list(root: &Path) -> Vec<RunEntry> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut runs: Vec<RunEntry> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            valid_name(&name).then(|| entry(&root.join(&name), name))?
        })
        .collect();
    runs.sort_by(|a, b| b.modified.total_cmp(&a.modified));
    runs
}

/// Whether `dir` is a run: a directory holding a `config.toml`.
fn is_run(dir: &Path) -> bool {
    dir.join(files::CONFIG).is_file()
}

/// Run `dir`'s line in the list; `None` when it is not a run.
fn entry(dir: &Path, name: String) -> Option<RunEntry> {
    if !is_run(dir) {
        return None;
    }
    let (epochs, problem) = match crate::config::Config::load(&dir.join(files::CONFIG)) {
        Ok(config) => (Some(config.train.epochs), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let metrics = dir.join(files::METRICS);
    let modified = std::fs::metadata(&metrics)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let rows = read_rows(&metrics);
    let live = problem.is_none() && RunLock::held(dir);
    // summary.json is written whole (a temporary file renamed), so one that does not
    // parse is damaged, not half-written: the run is listed as unreadable, not unfinished.
    let (summary, problem) = match summary_file(dir) {
        Ok(summary) => (summary, problem),
        Err(bad) => (None, problem.or((!live).then_some(bad))),
    };
    let imported = summary
        .as_ref()
        .is_some_and(|s| s["status"] == Status::Imported.name());
    let status = match summary.as_ref().and_then(|s| s["status"].as_str()) {
        _ if problem.is_some() => "unreadable".into(),
        _ if live => "training".into(),
        Some(status) => status.to_string(),
        None => "unfinished".into(),
    };
    Some(RunEntry {
        name,
        live,
        status,
        problem,
        epochs_done: rows.iter().filter(|r| r.tag == "train/loss").count(),
        // An imported run's config.toml holds placeholders for the training that did
        // not happen here.
        epochs: epochs.filter(|_| !imported),
        // An imported run logs no rows: its test figures are in its summary.
        test_accuracy: rows
            .iter()
            .rev()
            .find(|r| r.tag == "test/accuracy")
            .map(|r| r.value)
            .or_else(|| summary.as_ref()?["test"]["accuracy"].as_f64()),
        modified: modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    })
}

/// `GET /api/runs/{name}`.
#[derive(Debug, Serialize)]
pub struct RunDetail {
    /// The directory's name.
    pub name: String,
    /// `config.toml` as written.
    pub config: String,
    /// `summary.json`, once written.
    pub summary: Option<serde_json::Value>,
    /// Every row of `metrics.csv`.
    pub rows: Vec<Row>,
}

/// Everything the page shows of one run.
pub fn detail(dir: &Path, name: &str) -> RunDetail {
    RunDetail {
        name: name.to_string(),
        config: std::fs::read_to_string(dir.join(files::CONFIG)).unwrap_or_default(),
        summary: read_summary(dir),
        rows: read_rows(&dir.join(files::METRICS)),
    }
}

fn read_summary(dir: &Path) -> Option<serde_json::Value> {
    summary_file(dir).ok().flatten()
}

/// `summary.json` of run `dir`: `None` when there is none (yet), an error naming the
/// file when it is there but cannot be read as JSON.
fn summary_file(dir: &Path) -> Result<Option<serde_json::Value>, String> {
    crate::run_dir::read_summary(dir).map_err(|e| e.to_string())
}

/// The whole rows of `metrics.csv` (a half-written last line is left for later).
pub fn read_rows(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    complete_rows(&text).0
}

/// The rows of the complete lines of `text`, and the bytes they took.
fn complete_rows(text: &str) -> (Vec<Row>, usize) {
    let whole = whole_lines(text);
    (whole.lines().filter_map(parse_row).collect(), whole.len())
}

/// One `wall_time,step,tag,value` line (the header and anything malformed: `None`).
fn parse_row(line: &str) -> Option<Row> {
    let mut fields = line.split(',');
    let wall_time = fields.next()?.trim().parse().ok()?;
    let step = fields.next()?.trim().parse().ok()?;
    let tag = fields.next()?.trim().to_string();
    let value = fields.next()?.trim().parse().ok()?;
    Some(Row {
        wall_time,
        step,
        tag,
        value,
    })
}

/// A stream of run `dir`'s rows: every row so far, then new ones as they are written,
/// and its summary when it appears or changes. Must be called on the server's runtime.
pub fn follow(dir: PathBuf) -> EventStream {
    let (tx, stream) = EventStream::channel(QUEUE);
    tokio::spawn(async move {
        let metrics = dir.join(files::METRICS);
        let mut offset = 0usize;
        let mut summary_seen: Option<serde_json::Value> = None;
        let _ = tx.send(bytes::Bytes::from_static(b"retry: 1000\n\n")).await;
        loop {
            let length = tokio::fs::metadata(&metrics).await.map_or(0, |m| m.len());
            if length < offset as u64 {
                // Rewritten shorter (a resume dropped rows): start over.
                offset = 0;
            }
            let rest = read_from(&metrics, offset).await;
            let (rows, used) = complete_rows(&rest);
            offset += used;
            for row in rows {
                if tx.send(encode("row", &row)).await.is_err() {
                    return;
                }
            }
            let summary = read_summary(&dir);
            if summary.is_some() && summary != summary_seen {
                if tx.send(encode("summary", &summary)).await.is_err() {
                    return;
                }
                summary_seen = summary;
            }
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    });
    stream
}

/// The text of `path` from byte `offset` on (what was added since it was last read);
/// empty when it cannot be read.
async fn read_from(path: &Path, offset: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut bytes = Vec::new();
    if let Ok(mut file) = tokio::fs::File::open(path).await
        && file
            .seek(std::io::SeekFrom::Start(offset as u64))
            .await
            .is_ok()
    {
        let _ = file.read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
