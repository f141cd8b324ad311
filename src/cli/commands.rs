//! The commands: training (no subcommand), and those that use a trained run: `eval`,
//! `predict`, `report`, `export`, `serve`. Each opens the run directory once, asks the
//! library, and prints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use mnist_nn::backend::BackendKind;
use mnist_nn::config::{Config, Overrides};
use mnist_nn::data::MnistSplit;
use mnist_nn::data::classes::class_names;
use mnist_nn::eval::{EvalReport, predict, score};
use mnist_nn::export::Format;
use mnist_nn::logging::write_json;
use mnist_nn::preprocess::{Framing, Gray, preprocess_as};
use mnist_nn::run::ResumeOverrides;
use mnist_nn::run_dir::{RunDir, Which, files};
use mnist_nn::train::{EarlyStop, Ending};
use mnist_nn::{IMAGE_PIXELS, IMAGE_SIDE};

use super::progress::{self, Progress};
use crate::TrainArgs;

/// Where runs go unless `--out` says otherwise.
const ARTIFACTS: &str = "artifacts";

/// Training (no subcommand): a new run from `--config`, or `--resume`.
pub fn train(cli: &TrainArgs) -> anyhow::Result<ExitCode> {
    let mut ui = Progress::new();
    progress::stop_on_ctrl_c();
    let (dir, outcome) = if let Some(dir) = &cli.resume {
        let overrides = ResumeOverrides {
            epochs: cli.epochs,
            backend: cli.backend,
        };
        eprintln!("resuming {} from its last checkpoint", dir.display());
        progress::training_in(dir);
        let run = RunDir::open_to_train(dir)?;
        ui.epochs = Some(cli.epochs.unwrap_or(run.config().train.epochs));
        (
            dir.clone(),
            mnist_nn::run::resume(run, &overrides, &mut ui).map_err(|e| resumable(e, dir))?,
        )
    } else {
        let config_path = cli.config.as_deref().unwrap_or(Path::new("config.toml"));
        let mut config = Config::load(config_path)?;
        config.apply(&Overrides {
            backend: cli.backend,
            mode: cli.mode,
            seed: cli.seed,
            epochs: cli.epochs,
        });
        config.validate(Path::new("<command line>"))?;
        // The new directory is made now, so the line below names the one it will be
        // (and removed again if the run fails before writing to it).
        let claim;
        let dir = match &cli.out {
            Some(out) => out.clone(),
            None => {
                claim = RunDir::claim(Path::new(ARTIFACTS), &config.name)?;
                claim.path().to_path_buf()
            }
        };
        eprintln!(
            "training {} (hidden {}, {} mode, backend {}, batch {}, α {}, {} epoch{}) → {}",
            config.name,
            config.model.hidden,
            config.mode,
            config.backend,
            config.train.batch_size,
            config.train.learning_rate,
            config.train.epochs,
            if config.train.epochs == 1 { "" } else { "s" },
            dir.display()
        );
        ui.epochs = Some(config.train.epochs);
        progress::training_in(&dir);
        let outcome = mnist_nn::run::run(config, config_path, &dir, &mut ui)
            .map_err(|e| resumable(e, &dir))?;
        (dir, outcome)
    };
    let summary = &outcome.summary;
    if outcome.ending == Ending::Interrupted {
        eprintln!(
            "interrupted after {} steps; checkpoint and logs saved in {}. Continue with:\n  {}",
            ui.steps,
            dir.display(),
            progress::resume_command(&dir)
        );
        return Ok(ExitCode::from(130));
    }
    match summary.stopped {
        Some(EarlyStop::TargetReached { epoch, accuracy }) => eprintln!(
            "stopped at epoch {epoch}: validation accuracy {:.2}% reached train.target_accuracy \
             after {:.1} s of training and evaluation",
            100.0 * accuracy,
            summary.to_target_s.unwrap_or(f64::NAN)
        ),
        Some(EarlyStop::NoImprovement {
            best_epoch,
            accuracy,
        }) => eprintln!(
            "stopped after {} epochs: no better validation accuracy than epoch {best_epoch}'s \
             {:.2}% for train.patience evaluations",
            summary.epochs,
            100.0 * accuracy
        ),
        None => {}
    }
    let test = summary.test.map_or("no test set".into(), |t| {
        format!(
            "test accuracy {:.2}%, test loss {:.4}",
            100.0 * t.accuracy,
            t.loss
        )
    });
    let valid = summary.valid.map_or("no validation split".into(), |v| {
        format!("validation accuracy {:.2}%", 100.0 * v.accuracy)
    });
    eprintln!(
        "done in {:.1} s: {test}, {valid}; outputs in {}",
        summary.total_seconds,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `error`, followed by how to continue the run in `dir` when a write failed (a full
/// disk, a folder made read-only) after a checkpoint, which such a failure leaves whole.
fn resumable(error: mnist_nn::Error, dir: &Path) -> anyhow::Error {
    let writing = matches!(
        error,
        mnist_nn::Error::Io { .. } | mnist_nn::Error::SaveRecord { .. }
    );
    let step = RunDir::open(dir)
        .ok()
        .and_then(|run| run.checkpoint().ok().flatten().map(|c| c.position.step));
    match step {
        Some(step) if writing => anyhow::anyhow!(
            "{error}\nthe run's last checkpoint (step {step}) is whole: once that is mended, \
             continue with\n  {}",
            progress::resume_command(dir)
        ),
        _ => error.into(),
    }
}

/// The test set: the given IDX directory, or the run's `data.dir`.
fn test_split(data: Option<&Path>, default_dir: &Path) -> anyhow::Result<MnistSplit> {
    let dir = data.unwrap_or(default_dir);
    require_dir(dir)?;
    Ok(MnistSplit::read_test(dir)?)
}

/// An error unless `dir` is a directory (that may hold the IDX files).
fn require_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        anyhow::bail!("{}: not a directory of IDX files", dir.display());
    }
    Ok(())
}

/// An error unless a file can be made at `path` (an `--out`): its folder exists and it
/// is not itself a folder. Checked before the work whose result it would hold, so that
/// a mistyped path costs nothing.
fn require_file_out(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "{}: is a directory; --out takes the path of a file",
            path.display()
        );
    }
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(folder) = folder.filter(|f| !f.is_dir()) {
        anyhow::bail!(
            "{}: cannot be written, as {} is not a directory",
            path.display(),
            folder.display()
        );
    }
    Ok(())
}

/// `eval`: scores the model on the test set, prints the table, writes the JSON.
pub fn eval(
    run: &Path,
    which: Which,
    data: Option<&Path>,
    backend: Option<BackendKind>,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    out.map(require_file_out).transpose()?;
    let run_dir = RunDir::open(run)?;
    let config = run_dir.config();
    let backend = backend.unwrap_or(config.backend);
    let device = backend.device()?;
    let model = load_network(&run_dir, which, &device)?;
    let split = test_split(data, &config.data.dir)?;
    let scored = score(&model, &split.to_device(&device))?;
    let names = class_names(&config.data.dataset, data.unwrap_or(&config.data.dir))?;
    let report = EvalReport::new(&scored, &split.labels)?.with_names(names);
    let path = out.map_or_else(|| run_dir.file(files::EVAL), Path::to_path_buf);
    println!(
        "{} (hidden {}) on {} with backend {backend}\n",
        run.display(),
        config.model.hidden,
        data.unwrap_or(&config.data.dir).display()
    );
    print!("{}", report.table());
    write_json(&path, &report)?;
    println!("\nwritten to {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The network `which` names in `run`, saying on stderr when the last one is the
/// checkpoint's (no `model.bpk` yet: the run was interrupted or is still training).
fn load_network(
    run: &RunDir,
    which: Which,
    device: &burn::prelude::Device,
) -> anyhow::Result<mnist_nn::model::TwoLayerNet> {
    let model = run.load(which, device)?;
    if which == Which::Last
        && !run.file(files::MODEL).exists()
        && let Ok(Some(c)) = run.checkpoint()
    {
        eprintln!(
            "{}: no model.bpk yet (the run was interrupted or is still training): using \
             the network of its checkpoint at step {}",
            run.path().display(),
            c.position.step
        );
    }
    Ok(model)
}

/// The picture at `path`, or on standard input for `-` (`cat digit.png | mnist-nn
/// predict --model RUN -`).
fn open_picture(path: &Path) -> anyhow::Result<Gray> {
    if path != Path::new("-") {
        return Ok(Gray::open(path)?);
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
        .context("-: cannot read standard input")?;
    Gray::decode(&bytes, u32::MAX).context("-: standard input")
}

/// A 28×28 input as text, two characters a pixel (so that it looks square), darker
/// characters for more ink: what the network received.
fn as_text(input: &[f32; IMAGE_PIXELS]) -> String {
    const SHADES: [char; 8] = [' ', '.', ':', '-', '=', '+', '#', '@'];
    let mut text = String::new();
    for row in input.chunks(IMAGE_SIDE) {
        for &v in row {
            let shade = SHADES[((v.clamp(0.0, 1.0) * 7.0).round()) as usize];
            text.extend([shade, shade]);
        }
        text.push('\n');
    }
    text
}

/// `predict`: the digit in each image. An image that cannot be read is reported and
/// the others still predicted; the exit status is then 1.
pub fn predict_images(
    run: &Path,
    which: Which,
    images: &[PathBuf],
    backend: Option<BackendKind>,
    json: bool,
    show: bool,
) -> anyhow::Result<ExitCode> {
    let run = RunDir::open(run)?;
    let device = backend.unwrap_or(run.config().backend).device()?;
    let model = load_network(&run, which, &device)?;
    let data = &run.config().data;
    let names = class_names(&data.dataset, &data.dir)?;
    let framing = Framing::for_dataset(&data.dataset);
    if framing != Framing::Digit {
        eprintln!(
            "pictures prepared as {} was made: {}",
            data.dataset,
            framing.describe()
        );
    }
    let mut failed = false;
    for path in images {
        let input = open_picture(path).and_then(|g| {
            preprocess_as(&g, framing)
                .with_context(|| format!("{}: cannot find a digit", path.display()))
        });
        let input = match input {
            Ok(input) => input,
            Err(e) => {
                eprintln!("error: {}", super::error_line(&e));
                failed = true;
                continue;
            }
        };
        let p = predict(&model, &input, &device)?
            .pop()
            .context("the network returned no prediction")?;
        if json {
            let mut line = serde_json::json!({
                "image": path,
                "digit": p.digit,
                "class": names[p.digit],
                "probabilities": p.probabilities,
            });
            if show {
                line["input"] = serde_json::json!(input.to_vec());
            }
            println!("{line}");
        } else {
            let probs: Vec<String> = p
                .probabilities
                .iter()
                .enumerate()
                .map(|(d, q)| format!("{d}:{q:.3}"))
                .collect();
            println!(
                "{}: {} ({:.1}%)   {}",
                path.display(),
                names[p.digit],
                100.0 * p.probabilities[p.digit],
                probs.join(" ")
            );
            if show {
                print!("{}", as_text(&input));
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `report`: figures and a page next to the run.
pub fn report(run: &Path, backend: Option<BackendKind>) -> anyhow::Result<ExitCode> {
    let run = RunDir::open(run)?;
    let device = backend.unwrap_or(run.config().backend).device()?;
    let written = mnist_nn::report::write(&run, &device)?;
    let (gallery, figures): (Vec<_>, Vec<_>) = written
        .files
        .iter()
        .partition(|f| f.parent().is_some_and(|p| p.ends_with("mistakes")));
    for file in figures {
        println!("wrote {}", file.display());
    }
    if let Some(first) = gallery.first().and_then(|f| f.parent()) {
        println!(
            "wrote {} images of mistakes in {}",
            gallery.len(),
            first.display()
        );
    }
    if let Some(acc) = written.accuracy {
        println!("test accuracy {:.2}%", 100.0 * acc);
    }
    println!("open {}", written.index.display());
    Ok(ExitCode::SUCCESS)
}

/// `export`: the weights as safetensors or npz, or the forward pass as ONNX; `format`
/// as [`Format::to_write`] settles it with `out`.
pub fn export(
    run: &Path,
    which: Which,
    format: Option<Format>,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let format = Format::to_write(format, out).map_err(anyhow::Error::msg)?;
    out.map(require_file_out).transpose()?;
    let run = RunDir::open(run)?;
    let device = BackendKind::Ndarray.device()?;
    let model = load_network(&run, which, &device)?;
    let params = model
        .to_host()
        .map_err(|e| mnist_nn::Error::device("reading the parameters back", e))?;
    let path = out.map_or_else(
        || run.file(&format!("model.{}", format.extension())),
        Path::to_path_buf,
    );
    mnist_nn::export::write(&params, format, &path)?;
    let what = match format {
        Format::Onnx => "an ONNX model (image [batch, 784] → logits, probabilities [batch, 10]) of",
        _ => "",
    };
    println!(
        "wrote {what}{}W1 [{h}, 784], b1 [{h}], W2 [10, {h}], b2 [10] (float32) to {}",
        if what.is_empty() { "" } else { " " },
        path.display(),
        h = params.hidden
    );
    Ok(ExitCode::SUCCESS)
}

/// `import`: makes a run directory from a weights file and prints its test figures.
pub fn import(
    weights: &Path,
    name: Option<&str>,
    out: Option<&Path>,
    data: &Path,
) -> anyhow::Result<ExitCode> {
    let name = match name {
        Some(n) if mnist_nn::config::valid_name(n) => n.to_string(),
        Some(n) => anyhow::bail!(
            "--name {n:?}: use letters, digits, '-', '_' and '.' (it names a directory)"
        ),
        // The file's name, with what a run name may not hold made into '-'.
        None => weights
            .file_stem()
            .map(|s| mnist_nn::config::name_from(&s.to_string_lossy()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no file name to name the run by; pass --name",
                    weights.display()
                )
            })?,
    };
    let claim;
    let dir = match out {
        Some(out) => out,
        None => {
            claim = RunDir::claim(Path::new(ARTIFACTS), &name)?;
            claim.path()
        }
    };
    let imported = mnist_nn::import::import(weights, dir, &name, data.to_path_buf())?;
    let s = &imported.summary;
    let test = s.test.map_or(String::new(), |t| {
        format!(
            ": test accuracy {:.2}%, test loss {:.4}",
            100.0 * t.accuracy,
            t.loss
        )
    });
    println!(
        "imported {} (hidden {}) as {}{test}",
        weights.display(),
        s.hidden,
        imported.run.path().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `serve` was asked for.
#[derive(Debug)]
pub struct ServeArgs<'a> {
    /// The run for the Draw view.
    pub model: Option<&'a Path>,
    /// The runs directory (`--watch`).
    pub watch: Option<&'a Path>,
    /// `--allow-training`.
    pub allow_training: bool,
    /// `--allowed-host`.
    pub allowed_hosts: Vec<String>,
    /// Last or best network of `model`.
    pub which: Which,
    /// The test set to browse.
    pub data: Option<&'a Path>,
    /// The backend for `model`.
    pub backend: Option<BackendKind>,
}

/// Loads the run to draw on and says what it holds.
fn load_drawn(run: &Path, args: &ServeArgs<'_>) -> anyhow::Result<mnist_nn::serve::LoadedRun> {
    let loaded = mnist_nn::serve::LoadedRun::from_run(
        RunDir::open(run)?,
        args.which,
        args.backend,
        args.data,
    )?;
    let info = loaded.info(mnist_nn::serve::LIMITS);
    eprintln!(
        "loaded {} (hidden {}, backend {})",
        run.display(),
        info.hidden,
        info.backend
    );
    match (&info.test, info.test_unavailable) {
        (Some(test), _) => eprintln!(
            "test set {}: {} images, accuracy {:.2}%, {} mistakes to browse",
            test.dir.display(),
            test.images,
            100.0 * test.accuracy,
            test.mistakes
        ),
        (None, why) => eprintln!(
            "warning: no test set to browse ({}); drawing still works",
            why.unwrap_or("unknown reason")
        ),
    }
    Ok(loaded)
}

/// `serve`: loads the run (if any), listens, prints the URL on stdout, and serves until
/// stopped.
pub fn serve(args: &ServeArgs<'_>, host: &str, port: u16) -> anyhow::Result<ExitCode> {
    use mnist_nn::serve::{App, Options, View};
    args.data.map_or(Ok(()), require_dir)?;
    let drawn = match args.model {
        Some(run) => {
            let loaded = load_drawn(run, args)?;
            Some((
                mnist_nn::serve::run_name(&loaded),
                std::sync::Arc::new(loaded),
            ))
        }
        None => None,
    };
    if let Some(dir) = args.watch
        && !dir.is_dir()
    {
        anyhow::bail!("--watch {}: not a directory", dir.display());
    }
    let start_view = match (&drawn, args.watch) {
        (Some(_), _) => View::Draw,
        (None, Some(_)) => View::Runs,
        (None, None) => View::Train,
    };
    let defaults = Options::default();
    let options = Options {
        runs: args.watch.map_or(defaults.runs, Path::to_path_buf),
        allow_training: args.allow_training,
        allowed_hosts: args.allowed_hosts.clone(),
        start_view,
        data_dir: args.data.map_or(defaults.data_dir, Path::to_path_buf),
    };
    let server = mnist_nn::serve::start_app(App::new(options, drawn), host, port)?;
    if !server.address().ip().is_loopback() {
        eprintln!(
            "warning: listening on {}: other machines can reach this server",
            server.address()
        );
    }
    println!("serving {}", server.url());
    std::io::Write::flush(&mut std::io::stdout())?;
    eprintln!("press Ctrl-C to stop");
    // Ctrl-C stops a training started from the page as it stops `train`: after the
    // batch, with a checkpoint; then the server ends.
    let (tx, rx) = std::sync::mpsc::channel();
    if ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .is_err()
    {
        server.wait();
        return Ok(ExitCode::SUCCESS);
    }
    let _ = rx.recv();
    eprintln!("stopping (a training from the page stops with a checkpoint)");
    server.stop_training();
    Ok(ExitCode::SUCCESS)
}
