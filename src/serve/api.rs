//! The routes: the page's files, and the JSON API it uses.
//!
//! | route | answer |
//! |---|---|
//! | `GET /`, `/app.js`, … ([`super::page::FILES`]) | the page |
//! | `POST /api/predict` | [`Answer`] for an image or pixels (see [`super::input`]) |
//! | `GET /api/model` | [`super::loaded::ModelInfo`] |
//! | `GET /api/hidden/{unit}` | [`super::loaded::HiddenUnit`] |
//! | `GET /api/test/{index}`, `/api/test/random`, `/api/test/mistake` | [`TestAnswer`] |
//! | `GET /api/server` | the views, and what this client may do |
//! | `GET /api/settings` | the shipped configs, for the Train form |
//! | `GET`, `POST /api/train` | the training's status; start one |
//! | `POST /api/train/{pause,step,resume,stop}` | steer it |
//! | `GET /api/train/events` | server-sent events: state, steps, weights, epochs |
//! | `GET /api/runs`, `/api/runs/{name}`, `/api/runs/{name}/events` | the runs directory |
//! | `POST /api/runs/{name}/open` | a run becomes the Draw view's network |
//! | `GET`, `POST /api/equations`, `POST /api/equations/step` | the Equations view's batch |
//! | `GET /api/equations/cell?matrix=M&row=R&col=C` | how one cell is computed |
//!
//! Errors are JSON `{"error": "…"}` with status 400 (malformed input), 403 (a training
//! control from another machine or site), 404 (no such route, unit, image, run, or no
//! model loaded), 405 (wrong method), 409 (a training already running, or none to
//! steer), 413 (body over [`super::input::MAX_BODY_BYTES`]), 415 (content type), 500
//! (the device failed) or 503 (no test set to browse; too many viewers).

use serde::Serialize;

use super::app::App;
use super::control;
use super::http::{Reply, Request, Response};
use super::input::{MAX_BODY_BYTES, MAX_IMAGE_SIDE, network_input};
use super::loaded::{Limits, LoadedRun, Pick};
use super::page;
use crate::IMAGE_PIXELS;
use crate::NUM_CLASSES;

/// The limits the API enforces, as `GET /api/model` reports them.
pub const LIMITS: Limits = Limits {
    max_body_bytes: MAX_BODY_BYTES,
    max_image_side: MAX_IMAGE_SIDE,
};

/// What the network makes of an input: `POST /api/predict`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// The most probable digit.
    pub digit: usize,
    /// `A2`: the probability of each digit, 0 to 9.
    pub probabilities: [f32; NUM_CLASSES],
    /// The 784 values the network received (28×28, row-major, ink = 1): the
    /// preprocessed picture.
    pub input: Vec<f32>,
    /// `A1`: the hidden layer's activations.
    pub hidden: Vec<f32>,
}

/// A test image and the network's answer: `GET /api/test/…`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestAnswer {
    /// Index in the test set.
    pub index: usize,
    /// The true digit.
    pub label: u8,
    /// Whether the network's digit is the label.
    pub correct: bool,
    /// The network's answer (its `input` is the test image).
    #[serde(flatten)]
    pub answer: Answer,
}

/// Answers one request.
pub fn handle(app: &App, request: &Request) -> Reply {
    let path = request.path.as_str();
    let method = request.method.as_str();
    let route = Route::of(path);
    let allowed = route.methods();
    if allowed.is_empty() {
        return Response::error(404, &format!("no such page: {path}")).into();
    }
    if !allowed.contains(&method) {
        let allowed = allowed.join(", ");
        let mut response = Response::error(
            405,
            &format!(
                "{path} takes {}, not {method}",
                allowed.replace(", ", " or ")
            ),
        );
        response.headers.push(("Allow", allowed));
        return response.into();
    }
    match route {
        Route::Page(file) => page_file(file).into(),
        Route::Server => control::server(app, request).into(),
        Route::Settings => control::settings().into(),
        Route::Train if method == "POST" => control::start(app, request).into(),
        Route::Train => Response::json(200, &app.trainer.status()).into(),
        Route::Steer(action) => control::steer(app, request, action).into(),
        Route::TrainEvents => control::train_events(app),
        Route::Runs => control::runs(app).into(),
        Route::Run(name) => control::run(app, name).into(),
        Route::RunEvents(name) => control::run_events(app, name),
        Route::Open(name) => control::open(app, request, name).into(),
        Route::Equations if method == "POST" => control::equations_start(app, request).into(),
        Route::Equations => super::equations::get(&app.bench).into(),
        Route::EquationsStep => control::equations_step(app, request).into(),
        Route::EquationsCell => super::equations::cell(&app.bench, &request.query).into(),
        Route::NotFound => Response::error(404, &format!("no such page: {path}")).into(),
        drawing => {
            let Some((_, run)) = app.drawn() else {
                return Response::error(
                    404,
                    "no model loaded: train one on the Train view, open a run on the Runs \
                     view, or start the server with --model RUN",
                )
                .into();
            };
            match drawing {
                Route::Predict => predict(&run, request),
                Route::Model => Response::json(200, &run.info(LIMITS)),
                Route::Hidden(unit) => hidden_unit(&run, unit),
                Route::Test(which) => test_image(&run, which),
                _ => Response::error(404, &format!("no such page: {path}")),
            }
            .into()
        }
    }
}

/// Whether a request's answer is quick enough to give on the connection's own task:
/// the page's files, one image through the network, and small status answers.
pub fn quick(request: &Request) -> bool {
    matches!(
        (request.method.as_str(), Route::of(&request.path)),
        (
            "GET",
            Route::Page(_)
                | Route::Model
                | Route::Hidden(_)
                | Route::Test(_)
                | Route::Server
                | Route::Train
        ) | ("POST", Route::Predict)
    )
}

/// Where a path leads.
enum Route<'a> {
    Page(&'static page::File),
    Predict,
    Model,
    Hidden(&'a str),
    Test(&'a str),
    Server,
    Settings,
    Train,
    Steer(&'a str),
    TrainEvents,
    Runs,
    Run(&'a str),
    RunEvents(&'a str),
    Open(&'a str),
    Equations,
    EquationsStep,
    EquationsCell,
    NotFound,
}

impl<'a> Route<'a> {
    fn of(path: &'a str) -> Self {
        if let Some(file) = page::FILES.iter().find(|f| f.path == path) {
            return Route::Page(file);
        }
        if let Some(unit) = path.strip_prefix("/api/hidden/") {
            return Route::Hidden(unit);
        }
        if let Some(which) = path.strip_prefix("/api/test/") {
            return Route::Test(which);
        }
        if let Some(action) = path.strip_prefix("/api/train/") {
            return match action {
                "events" => Route::TrainEvents,
                action => Route::Steer(action),
            };
        }
        if let Some(rest) = path.strip_prefix("/api/runs/") {
            return match rest.split_once('/') {
                None => Route::Run(rest),
                Some((name, "events")) => Route::RunEvents(name),
                Some((name, "open")) => Route::Open(name),
                Some(_) => Route::NotFound,
            };
        }
        match path {
            "/api/predict" => Route::Predict,
            "/api/model" => Route::Model,
            "/api/server" => Route::Server,
            "/api/settings" => Route::Settings,
            "/api/train" => Route::Train,
            "/api/runs" => Route::Runs,
            "/api/equations" => Route::Equations,
            "/api/equations/step" => Route::EquationsStep,
            "/api/equations/cell" => Route::EquationsCell,
            _ => Route::NotFound,
        }
    }

    /// The methods the route takes (none: no such route).
    fn methods(&self) -> &'static [&'static str] {
        match self {
            Route::NotFound => &[],
            Route::Predict | Route::Steer(_) | Route::Open(_) | Route::EquationsStep => &["POST"],
            Route::Train | Route::Equations => &["GET", "POST"],
            _ => &["GET"],
        }
    }
}

fn page_file(file: &page::File) -> Response {
    Response {
        status: 200,
        content_type: file.content_type,
        // Nothing outside this server may be loaded: no CDN, no fonts, no analytics.
        headers: vec![(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'"
                .into(),
        )],
        body: file.body.as_bytes().to_vec(),
    }
}

fn look(run: &LoadedRun, input: &[f32; IMAGE_PIXELS]) -> Result<Answer, Response> {
    let seen = run
        .look(input)
        .map_err(|e| Response::error(500, &e.to_string()))?;
    Ok(Answer {
        digit: seen.prediction.digit,
        probabilities: seen.prediction.probabilities,
        input: input.to_vec(),
        hidden: seen.hidden,
    })
}

fn predict(run: &LoadedRun, request: &Request) -> Response {
    let input = match network_input(request.content_type.as_deref(), &request.body) {
        Ok(input) => input,
        Err(e) => return Response::error(e.status, &e.message),
    };
    match look(run, &input) {
        Ok(answer) => Response::json(200, &answer),
        Err(response) => response,
    }
}

/// A unit or image index from the path: a whole number, one too large for `usize` taken
/// as `usize::MAX` (past the end of anything, so the caller answers 404 as for any
/// other index past the end); anything else is 400.
fn index(text: &str, what: &str) -> Result<usize, Response> {
    match text.parse::<usize>() {
        Ok(i) => Ok(i),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => Ok(usize::MAX),
        Err(_) => Err(Response::error(
            400,
            &format!("{what} {text:?} is not a whole number from 0 up"),
        )),
    }
}

fn hidden_unit(run: &LoadedRun, text: &str) -> Response {
    let unit = match index(text, "hidden unit") {
        Ok(unit) => unit,
        Err(response) => return response,
    };
    match run.unit(unit) {
        Some(unit) => Response::json(200, &unit),
        None => Response::error(
            404,
            &format!(
                "no hidden unit {text}: the network has {} (0 to {})",
                run.hidden(),
                run.hidden().saturating_sub(1)
            ),
        ),
    }
}

fn test_image(run: &LoadedRun, which: &str) -> Response {
    let test = match run.test_set() {
        Ok(test) => test,
        Err(why) => {
            return Response::error(503, &format!("no test set to browse: {why}"));
        }
    };
    let pick = match which {
        "random" => Pick::Random,
        "mistake" => Pick::Mistake,
        text => match index(text, "test image") {
            Ok(i) => Pick::Index(i),
            Err(_) => {
                return Response::error(
                    400,
                    &format!(
                        "{text:?}: ask for /api/test/random, /api/test/mistake or \
                         /api/test/<index>"
                    ),
                );
            }
        },
    };
    let Some(image) = test.pick(pick) else {
        let message = match pick {
            Pick::Index(_) => format!(
                "no test image {which}: the test set has {} (0 to {})",
                test.len(),
                test.len().saturating_sub(1)
            ),
            _ => "the network makes no mistake on the test set".into(),
        };
        return Response::error(404, &message);
    };
    match look(run, &image.input) {
        Ok(answer) => Response::json(
            200,
            &TestAnswer {
                index: image.index,
                label: image.label,
                correct: answer.digit == usize::from(image.label),
                answer,
            },
        ),
        Err(response) => response,
    }
}
