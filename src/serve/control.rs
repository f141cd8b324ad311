//! The Train and Runs views' endpoints: the shipped configs as the form's defaults,
//! starting and steering the training, the event streams, and the runs directory.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::access;
use super::app::{App, View};
use super::http::{Reply, Request, Response};
use super::loaded::LoadedRun;
use super::training::{Refusal, State, Status};
use super::watch;
use crate::config::Config;

/// The configs shipped with the program, as the Train form's starting points: name,
/// file, text.
const SHIPPED: [(&str, &str, &str); 6] = [
    (
        "sgd",
        "configs/sgd.toml",
        include_str!("../../configs/sgd.toml"),
    ),
    (
        "fast",
        "configs/fast.toml",
        include_str!("../../configs/fast.toml"),
    ),
    (
        "adam",
        "configs/adam.toml",
        include_str!("../../configs/adam.toml"),
    ),
    (
        "seed",
        "configs/seed.toml",
        include_str!("../../configs/seed.toml"),
    ),
    (
        "simard",
        "configs/simard.toml",
        include_str!("../../configs/simard.toml"),
    ),
    (
        "fashion",
        "configs/fashion.toml",
        include_str!("../../configs/fashion.toml"),
    ),
];

/// Where the form's settings are said to come from in error messages.
const FORM: &str = "the Train form";

/// `GET /api/server`.
#[derive(Debug, Serialize)]
struct ServerInfo {
    views: [View; 4],
    start_view: View,
    training_allowed: bool,
    watch: String,
    model: Option<String>,
    viewers: usize,
}

/// `GET /api/server`: what the page needs to lay itself out.
pub fn server(app: &App, request: &Request) -> Response {
    Response::json(
        200,
        &ServerInfo {
            views: [View::Train, View::Equations, View::Draw, View::Runs],
            start_view: app.options.start_view,
            training_allowed: access::may_train(request, &app.options).is_ok(),
            watch: app.options.runs.display().to_string(),
            model: app.drawn().map(|(name, _)| name),
            viewers: app.trainer.viewers(),
        },
    )
}

#[derive(Debug, Serialize)]
struct Shipped {
    name: &'static str,
    file: &'static str,
    config: serde_json::Value,
}

/// `GET /api/settings`: the shipped configs, as JSON with the TOML files' keys.
pub fn settings() -> Response {
    let configs: Vec<Shipped> = SHIPPED
        .iter()
        .filter_map(|&(name, file, text)| {
            let config = Config::parse(text, Path::new(file)).ok()?;
            Some(Shipped {
                name,
                file,
                config: serde_json::to_value(&config).ok()?,
            })
        })
        .collect();
    Response::json(
        200,
        &serde_json::json!({ "configs": configs, "default": "sgd" }),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    config: serde_json::Value,
}

/// The form's settings as a config: through TOML and the same parsing and checks as a
/// config file, so that a bad value is refused naming its key.
pub fn form_config(value: serde_json::Value) -> Result<Config, String> {
    let value = without_nulls(value);
    if !value.is_object() {
        return Err("config must be an object of settings, as in a config file".into());
    }
    let text = toml::to_string(&value).map_err(|e| format!("{FORM}: {e}"))?;
    let path = Path::new(FORM);
    let config = Config::parse_form(&text, path).map_err(|e| e.to_string())?;
    config.validate(path).map_err(|e| e.to_string())?;
    Ok(config)
}

/// `null` means "not set", which TOML writes by leaving the key out; a table left with
/// nothing set (a schedule or augmentation the form offered but nobody filled in) is
/// left out too.
fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    let empty = |v: &serde_json::Value| v.as_object().is_some_and(|m| m.is_empty());
    match value {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .filter(|(_, v)| !empty(v))
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(without_nulls).collect())
        }
        other => other,
    }
}

fn refusal(r: Refusal) -> Response {
    Response::error(r.status, &r.message)
}

/// `POST /api/train`.
pub fn start(app: &App, request: &Request) -> Response {
    if let Err(response) = access::may_train(request, &app.options).and(request.require_json()) {
        return response;
    }
    let body: StartBody = match serde_json::from_slice(&request.body) {
        Ok(body) => body,
        Err(e) => return Response::error(400, &format!("bad JSON: {e}")),
    };
    let config = match form_config(body.config) {
        Ok(config) => config,
        Err(message) => return Response::error(400, &message),
    };
    match app.trainer.start(config, &app.options.runs) {
        Ok(status) => Response::json(202, &status),
        Err(r) => refusal(r),
    }
}

/// `POST /api/train/{pause,step,resume,stop}`.
pub fn steer(app: &App, request: &Request, action: &str) -> Response {
    if let Err(response) = access::may_train(request, &app.options) {
        return response;
    }
    let trainer = &app.trainer;
    let before = trainer.status().step;
    // What the loop shows once it has acted: the answer waits for it (up to
    // STEER_WAIT), so that it tells where the training is, not where it was asked.
    let (done, acted): (_, fn(&Status, usize) -> bool) = match action {
        "pause" => (trainer.pause(), |s, _| s.state == State::Paused),
        "step" => (trainer.step(), |s, before| {
            s.state == State::Paused && s.step > before
        }),
        "resume" => (trainer.resume(), |s, _| s.state == State::Running),
        "stop" => (trainer.stop(), |_, _| false),
        other => {
            return Response::error(
                404,
                &format!("no training control {other:?}: pause, step, resume or stop"),
            );
        }
    };
    if let Err(r) = done {
        return refusal(r);
    }
    let deadline = std::time::Instant::now() + STEER_WAIT;
    let mut status = trainer.status();
    while status.state.is_active()
        && !acted(&status, before)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
        status = trainer.status();
    }
    Response::json(200, &status)
}

/// How long a control's answer waits for the loop to act (a batch of a large network
/// on a slow machine, or saving a checkpoint, takes longer: the answer then tells
/// where it is, and the event stream what comes after).
const STEER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /api/train/events`.
pub fn train_events(app: &App) -> Reply {
    match app.trainer.subscribe() {
        Some(stream) => Reply::Events(stream),
        None => Response::error(503, "too many viewers of the training; try again").into(),
    }
}

/// `GET /api/runs`.
pub fn runs(app: &App) -> Response {
    Response::json(
        200,
        &serde_json::json!({
            "dir": app.options.runs.display().to_string(),
            "runs": watch::list(&app.options.runs),
        }),
    )
}

fn run_dir(app: &App, name: &str) -> Result<std::path::PathBuf, Response> {
    watch::run_path(&app.options.runs, name).map_err(|(status, m)| Response::error(status, &m))
}

/// `GET /api/runs/{name}`.
pub fn run(app: &App, name: &str) -> Response {
    match run_dir(app, name) {
        Ok(dir) => Response::json(200, &watch::detail(&dir, name)),
        Err(response) => response,
    }
}

/// `GET /api/runs/{name}/events`.
pub fn run_events(app: &App, name: &str) -> Reply {
    match run_dir(app, name) {
        Ok(dir) => Reply::Events(watch::follow(dir)),
        Err(response) => response.into(),
    }
}

/// `POST /api/runs/{name}/open`: the run becomes the Draw view's network.
pub fn open(app: &App, request: &Request, name: &str) -> Response {
    if let Err(response) = access::same_site(request, &app.options) {
        return response;
    }
    let dir = match run_dir(app, name) {
        Ok(dir) => dir,
        Err(response) => return response,
    };
    match LoadedRun::load(&dir, None, None) {
        Ok(loaded) => {
            let info = serde_json::to_value(loaded.info(super::LIMITS));
            app.set_drawn(name.to_string(), loaded);
            match info {
                Ok(info) => Response::json(200, &info),
                Err(e) => Response::error(500, &e.to_string()),
            }
        }
        Err(e) => Response::error(409, &format!("cannot open {name}: {e}")),
    }
}

/// `POST /api/equations`: a new batch and network for the Equations view.
pub fn equations_start(app: &App, request: &Request) -> Response {
    use super::equations::{Sources, start};
    if let Err(response) = access::same_site(request, &app.options).and(request.require_json()) {
        return response;
    }
    let data = match app.data() {
        Ok(data) => data,
        Err(message) => return Response::error(503, &message),
    };
    let drawn = app.drawn();
    let training = app
        .trainer
        .latest_model()
        .and_then(|model| model.to_host().ok());
    let sources = Sources {
        train: Some(&data.train),
        test: Some(&data.test),
        model: drawn.as_ref().map(|(_, run)| run.params()),
        training: training.as_ref(),
    };
    start(&app.bench, &request.body, &sources)
}

/// `POST /api/equations/step`.
pub fn equations_step(app: &App, request: &Request) -> Response {
    if let Err(response) = access::same_site(request, &app.options).and(request.require_json()) {
        return response;
    }
    super::equations::step(&app.bench, &request.body)
}
