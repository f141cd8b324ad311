//! Reading `metrics.csv` back: one series of `(step, value)` per tag.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::logging::{METRICS_HEADER, whole_lines};

/// Every tag's points in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Tag → `(step, value)` points.
    pub by_tag: BTreeMap<String, Vec<(f64, f64)>>,
}

impl Series {
    /// The points of `tag` (empty if it was never logged).
    pub fn get(&self, tag: &str) -> &[(f64, f64)] {
        self.by_tag.get(tag).map_or(&[], Vec::as_slice)
    }
}

/// Reads `path`. A run still writing may have left half a last row, which is skipped
/// ([`whole_lines`]); any other malformed row is an error naming its line.
pub fn read(path: &Path) -> Result<Series> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |line: usize, problem: &str| Error::Metrics {
        path: path.to_path_buf(),
        line,
        problem: problem.to_string(),
    };
    let mut lines = whole_lines(&text).lines().enumerate();
    match lines.next() {
        Some((_, header)) if header == METRICS_HEADER => {}
        _ => return Err(bad(1, &format!("expected the header `{METRICS_HEADER}`"))),
    }
    let mut series = Series::default();
    for (i, line) in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let parsed = match fields.as_slice() {
            [_, step, tag, value] => step
                .parse::<f64>()
                .ok()
                .zip(value.parse::<f64>().ok())
                .map(|(s, v)| (*tag, s, v)),
            _ => None,
        };
        match parsed {
            Some((tag, step, value)) => series
                .by_tag
                .entry(tag.to_string())
                .or_default()
                .push((step, value)),
            None if line.is_empty() => {}
            None => return Err(bad(i + 1, "not a `wall_time,step,tag,value` row")),
        }
    }
    Ok(series)
}
