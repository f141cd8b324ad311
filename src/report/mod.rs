//! `report`: pictures of a run, next to it in `<run>/report/`, gathered by an
//! `index.html` — learning curves, the confusion matrix, the most confident mistakes
//! and the first layer's weights. It reads only what the run has written so far
//! (`metrics.csv`, and `model.bpk` or the last checkpoint), so it also works while the
//! run is still training.

mod charts;
pub mod metrics;
pub(crate) mod tiles;

use std::fmt::Write as _;
use std::path::PathBuf;

use burn::prelude::Device;

use crate::augment::Augmenter;
use crate::data::{FILES, MnistSplit};
use crate::error::{Error, Result};
use crate::eval::{self, EvalReport, Mistake, score};
use crate::run_dir::{RunDir, files};
use crate::{IMAGE_PIXELS, NUM_CLASSES};

/// How many of the most confident mistakes the gallery shows.
pub const GALLERY: usize = 24;

/// What `report` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The page that shows everything.
    pub index: PathBuf,
    /// Every file written, the page included.
    pub files: Vec<PathBuf>,
    /// Test accuracy of the model the report looked at, when there was one.
    pub accuracy: Option<f64>,
}

/// Writes the report of `run` (evaluating on `device`) into its `report/` folder.
pub fn write(run: &RunDir, device: &Device) -> Result<Written> {
    let config = run.config();
    let out = run.file(files::REPORT);
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let mut files = Vec::new();
    let series = metrics::read(&run.file(files::METRICS))?;
    for (name, title, y) in [
        ("loss.svg", "loss (mean cross-entropy)", "loss"),
        ("accuracy.svg", "accuracy", "accuracy"),
    ] {
        let lines: Vec<_> = charts::SPLIT_COLOURS
            .iter()
            .map(|(split, colour)| (*split, series.get(&format!("{split}/{y}")), *colour))
            .filter(|(_, points, _)| !points.is_empty())
            .collect();
        let path = out.join(name);
        charts::line_chart(&path, title, y, &lines)?;
        files.push(path);
    }
    // A run in its first epoch has no network saved yet: curves only.
    let model = match run.model_file()? {
        Some(_) => Some(run.load_model(device)?),
        None => None,
    };
    let mut evaluation = None;
    let mut mistakes = Vec::new();
    if let Some(model) = &model {
        let test = MnistSplit::read_test(&config.data.dir)?;
        let scored = score(model, &test.to_device(device))?;
        let names = crate::data::classes::class_names(&config.data.dataset, &config.data.dir)?;
        let report = EvalReport::new(&scored, &test.labels)?.with_names(names);
        let path = out.join("confusion.svg");
        charts::confusion_heat_map(&path, &report.confusion, report.noun())?;
        files.push(path);
        mistakes = most_confident(eval::mistakes(&scored.predictions, &test.labels));
        let gallery = out.join("mistakes");
        std::fs::create_dir_all(&gallery).map_err(|e| Error::io(&gallery, e))?;
        for (k, m) in mistakes.iter().enumerate() {
            let Some(pixels) = test.image(m.index) else {
                continue;
            };
            let path = gallery.join(format!("{k:02}.png"));
            tiles::digit_png(&path, &pixels, 3)?;
            files.push(path);
        }
        let params = model
            .to_host()
            .map_err(|e| Error::device("reading the weights back", e))?;
        let path = out.join("weights.png");
        let zoom = if params.hidden <= 64 {
            3
        } else if params.hidden <= 256 {
            2
        } else {
            1
        };
        tiles::weight_tiles(&path, &params.w1, params.hidden, zoom)?;
        files.push(path);
        evaluation = Some(report);
    }
    let augmented = !config.train.augment.is_off();
    if augmented {
        let path = out.join(AUGMENTED);
        augmented_samples(&path, config)?;
        files.push(path);
    }
    let status = run.summary().map_or_else(
        || "in progress (no summary.json yet)".to_string(),
        |s| s.status.to_string(),
    );
    let html = index_html(
        &config.name,
        &status,
        &config.to_toml(),
        evaluation.as_ref().ok_or_else(|| no_model(run)),
        &mistakes,
        augmented,
    );
    let index = out.join("index.html");
    crate::logging::write_atomic(&index, html.as_bytes())?;
    files.push(index.clone());
    Ok(Written {
        index,
        files,
        accuracy: evaluation.map(|e| e.accuracy),
    })
}

/// The picture of augmented training images.
const AUGMENTED: &str = "augmented.png";
/// Training images shown augmented, and the epochs shown of each.
const AUGMENTED_IMAGES: usize = 8;
const AUGMENTED_EPOCHS: usize = 6;

/// The first training images as the run's `[train.augment]` distorted them in its
/// first epochs: each row an original, then what the network was shown of it.
fn augmented_samples(path: &std::path::Path, config: &crate::config::Config) -> Result<()> {
    let dir = &config.data.dir;
    let [images, labels, ..] = FILES.map(|name| crate::data::locate(dir, name));
    let train = MnistSplit::read(&images, &labels)?;
    let train = train.slice(0..AUGMENTED_IMAGES.min(train.len()));
    let augmenter = Augmenter::new(config.train.augment);
    let epochs: Vec<_> = (1..=AUGMENTED_EPOCHS)
        .map(|epoch| augmenter.epoch(config.seed, epoch))
        .collect();
    let rows: Vec<Vec<[f32; IMAGE_PIXELS]>> = (0..train.len())
        .map(|index| {
            let original = train.image(index).unwrap_or([0.0; IMAGE_PIXELS]);
            std::iter::once(original)
                .chain(epochs.iter().map(|epoch| epoch.image(&train.pixels, index)))
                .collect()
        })
        .collect();
    tiles::digit_grid(path, &rows, 2)
}

/// The mistakes most confident first, at most [`GALLERY`].
fn most_confident(mut wrong: Vec<Mistake>) -> Vec<Mistake> {
    wrong.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    wrong.truncate(GALLERY);
    wrong
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page's line for a run without a network: "yet" while the run has not ended.
fn no_model(run: &RunDir) -> String {
    let lead = match run.summary() {
        None => "No model saved yet",
        Some(_) => "No model saved",
    };
    format!("{lead}: {}.", run.why_no_model())
}

/// The report's page; `evaluation` is the test set's figures, or why there are none.
fn index_html(
    name: &str,
    status: &str,
    config: &str,
    evaluation: std::result::Result<&EvalReport, String>,
    mistakes: &[Mistake],
    augmented: bool,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>mnist-nn report: {n}</title>\n<style>\
         body{{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
         figure{{display:inline-block;margin:0 1em 1em 0;vertical-align:top}}\
         .gallery figure{{width:100px;text-align:center;font-size:13px}}\
         table{{border-collapse:collapse}}td,th{{padding:2px 10px;text-align:right}}\
         pre{{background:#f4f4f4;padding:1em}}</style></head><body>\n\
         <h1>Run <code>{n}</code></h1>\n<p>Status: {s}.</p>\n",
        n = escape(name),
        s = escape(status)
    );
    if let Ok(e) = evaluation {
        let _ = writeln!(
            h,
            "<p>Test accuracy <b>{:.2}%</b> on {} images, mean cross-entropy {:.4}.</p>",
            100.0 * e.accuracy,
            e.images,
            e.loss
        );
    }
    h.push_str(
        "<h2>Learning curves</h2>\n<figure><img src=\"loss.svg\" alt=\"loss curves\"></figure>\
         <figure><img src=\"accuracy.svg\" alt=\"accuracy curves\"></figure>\n",
    );
    match evaluation {
        Err(why) => {
            let _ = writeln!(h, "<p>{why}</p>");
        }
        Ok(e) => {
            h.push_str(&format!("<h2>Confusion matrix on the test set</h2>\n<figure><img src=\"confusion.svg\" alt=\"confusion matrix\"></figure>\n<figure><table><tr><th>{}</th><th>images</th><th>precision</th><th>recall</th></tr>\n", e.noun()));
            for c in &e.classes {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{:.2}%</td><td>{:.2}%</td></tr>",
                    escape(&e.name(c.digit)),
                    c.support,
                    100.0 * c.precision,
                    100.0 * c.recall
                );
            }
            h.push_str("</table></figure>\n");
            let _ = write!(
                h,
                "<h2>The {} most confident mistakes</h2>\n<div class=\"gallery\">\n",
                mistakes.len()
            );
            for (k, m) in mistakes.iter().enumerate() {
                let _ = writeln!(
                    h,
                    "<figure><img src=\"mistakes/{k:02}.png\" alt=\"test image {i}\" width=\"84\">\
                     <figcaption>#{i}: true {t}, said {p} ({c:.0}%)</figcaption></figure>",
                    i = m.index,
                    t = escape(&e.name(m.label)),
                    p = escape(&e.name(m.predicted)),
                    c = 100.0 * m.confidence
                );
            }
            let _ = write!(
                h,
                "</div>\n<h2>First-layer weights</h2>\n<p>Each tile is one hidden unit's \
                 784 input weights (a row of W1) laid out as the 28×28 image they multiply: \
                 red positive, blue negative, white zero; each tile on its own scale.</p>\n\
                 <figure><img src=\"weights.png\" alt=\"first-layer weights\"></figure>\n"
            );
        }
    }
    if augmented {
        let _ = write!(
            h,
            "<h2>What the network was shown</h2>\n<p>The first {AUGMENTED_IMAGES} training \
             images: on the left as stored, then as <code>[train.augment]</code> distorted \
             them in epochs 1 to {AUGMENTED_EPOCHS} of this run (the same seed and \
             generator as the training loop).</p>\n<figure><img src=\"{AUGMENTED}\" \
             alt=\"augmented training images\"></figure>\n"
        );
    }
    let _ = write!(
        h,
        "<h2>Config</h2>\n<pre>{}</pre>\n<p>{} classes; regenerate with \
         <code>mnist-nn report --run &lt;run&gt;</code>.</p>\n</body></html>\n",
        escape(config),
        NUM_CLASSES
    );
    h
}
