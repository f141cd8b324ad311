//! The Equations view's API: pure functions from a request's pieces to a `Response`,
//! on a shared [`Bench`] (the routes that call them are wired in `api.rs`).
//!
//! | route | function |
//! |---|---|
//! | `POST /api/equations` | [`start`]: a new [`Workbench`] → WORKED |
//! | `GET /api/equations` | [`get`] → WORKED (404 if none started) |
//! | `POST /api/equations/step` | [`step`]: one update `W −= α·dW` → WORKED, `stepped` filled |
//! | `GET /api/equations/cell?matrix=dW2&row=3&col=17` | [`cell`] → [`crate::equations::Explained`] |
//!
//! WORKED is [`crate::equations::Worked`]. Bad input is answered 400 with a message
//! that names the field; an unknown cell 404; a network that is asked for but absent
//! 404 (`"model"`) or 409 (`"training"`); a failure of the device 500.

use std::sync::{Mutex, MutexGuard};

use serde_json::{Map, Value};

use super::http::Response;
use crate::data::MnistSplit;
use crate::equations::{Batch, ExplainError, MAX_HIDDEN, MAX_M, Source, Workbench};
use crate::model::{HostParams, Init};
use crate::word::UnknownWord;

/// The workbench the Equations view works on, shared by every connection: none until
/// the first [`start`].
#[derive(Debug, Default)]
pub struct Bench(Mutex<Option<Workbench>>);

impl Bench {
    /// The workbench, also after a panic elsewhere while it was held (its state is
    /// replaced whole by each start and step, never left half-updated).
    fn lock(&self) -> MutexGuard<'_, Option<Workbench>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a new workbench can be made from: the server's images and networks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    /// MNIST's training images, when the server has them (`"source": "train"`).
    pub train: Option<&'a MnistSplit>,
    /// MNIST's test images, when the server has them (`"source": "test"`).
    pub test: Option<&'a MnistSplit>,
    /// The Draw view's model, as host parameters (`"network": "model"`).
    pub model: Option<&'a HostParams>,
    /// The live training's current weights, as host parameters
    /// (`"network": "training"`).
    pub training: Option<&'a HostParams>,
}

/// Which network a workbench starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    Fresh,
    Model,
    Training,
}

impl Network {
    const ALL: [Network; 3] = [Network::Fresh, Network::Model, Network::Training];

    fn name(self) -> &'static str {
        match self {
            Network::Fresh => "fresh",
            Network::Model => "model",
            Network::Training => "training",
        }
    }
}

/// The fields of `POST /api/equations`.
const START_FIELDS: [&str; 8] = [
    "network", "hidden", "init", "seed", "source", "start", "m", "alpha",
];
/// Defaults of `POST /api/equations`.
const DEFAULT_HIDDEN: u64 = 16;
const DEFAULT_SEED: u64 = 1;
const DEFAULT_M: u64 = 8;
const DEFAULT_ALPHA: f64 = 0.1;

/// `POST /api/equations`: a new workbench from `body`, JSON `{"network":
/// "fresh"|"model"|"training", "hidden": 16, "init": "he", "seed": 1, "source":
/// "test"|"train", "start": 0, "m": 8, "alpha": 0.1}`, every field optional (defaults
/// shown; an empty body takes them all). `hidden`, `init` and `seed` shape a `"fresh"`
/// network and are ignored for the others. Answers WORKED and keeps the workbench for
/// the other routes.
pub fn start(bench: &Bench, body: &[u8], sources: &Sources<'_>) -> Response {
    match new_workbench(body, sources) {
        Ok(workbench) => {
            let answer = workbench.worked();
            *bench.lock() = Some(workbench);
            worked_response(answer)
        }
        Err(response) => response,
    }
}

/// `GET /api/equations`: the workbench's WORKED, or 404 when none was started.
pub fn get(bench: &Bench) -> Response {
    match bench.lock().as_ref() {
        Some(workbench) => worked_response(workbench.worked()),
        None => not_started(),
    }
}

/// `POST /api/equations/step`: one update `W −= α·dW, b −= α·db`, then WORKED with
/// `stepped` filled. The body is empty or `{"alpha": α}`, which sets `α` for this step
/// and the next ones.
pub fn step(bench: &Bench, body: &[u8]) -> Response {
    let fields = match object(body, &["alpha"]) {
        Ok(fields) => fields,
        Err(response) => return response,
    };
    let alpha = match fields.get("alpha").filter(|v| !v.is_null()) {
        Some(_) => match alpha_field(&fields) {
            Ok(alpha) => Some(alpha),
            Err(response) => return response,
        },
        None => None,
    };
    let mut guard = bench.lock();
    let Some(workbench) = guard.as_mut() else {
        return not_started();
    };
    if let Some(alpha) = alpha
        && let Err(e) = workbench.set_alpha(alpha)
    {
        return Response::error(400, &format!("alpha: {e}"));
    }
    worked_response(workbench.step())
}

/// `GET /api/equations/cell?…`: how one cell is computed. `query` is the query string
/// without its `?`: `matrix=dW2&row=3&col=17` (`col` may be left out for the `r × 1`
/// biases: 0). 400 for a missing or malformed parameter or an unknown matrix, 404 for a
/// cell outside the matrix.
pub fn cell(bench: &Bench, query: &str) -> Response {
    let (matrix, row, col) = match cell_query(query) {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let guard = bench.lock();
    let Some(workbench) = guard.as_ref() else {
        return not_started();
    };
    match workbench.explain(&matrix, row, col) {
        Ok(explained) => Response::json(200, &explained),
        Err(e @ ExplainError::UnknownMatrix { .. }) => Response::error(400, &e.to_string()),
        Err(e @ ExplainError::OutOfRange { .. }) => Response::error(404, &e.to_string()),
    }
}

fn not_started() -> Response {
    Response::error(
        404,
        "no equations started: POST /api/equations first (e.g. with {})",
    )
}

fn worked_response(worked: crate::Result<crate::equations::Worked>) -> Response {
    match worked {
        Ok(worked) => Response::json(200, &worked),
        Err(e) => Response::error(500, &e.to_string()),
    }
}

/// The workbench a start body asks for, or the response that says why not.
fn new_workbench(body: &[u8], sources: &Sources<'_>) -> Result<Workbench, Response> {
    let fields = object(body, &START_FIELDS)?;
    let network = word(
        &fields,
        "network",
        Network::Fresh,
        Network::ALL,
        Network::name,
    )?;
    let init = word(
        &fields,
        "init",
        Init::He,
        [Init::He, Init::Uniform],
        init_name,
    )?;
    let source = word(&fields, "source", Source::Test, Source::ALL, Source::name)?;
    let hidden = whole(&fields, "hidden", DEFAULT_HIDDEN)?;
    let seed = whole(&fields, "seed", DEFAULT_SEED)?;
    let start = whole(&fields, "start", 0)?;
    let m = whole(&fields, "m", DEFAULT_M)?;
    let alpha = match fields.get("alpha").filter(|v| !v.is_null()) {
        Some(_) => alpha_field(&fields)?,
        None => DEFAULT_ALPHA,
    };
    let m = in_range("m", m, MAX_M)?;
    let hidden = in_range("hidden", hidden, MAX_HIDDEN)?;

    let split = match source {
        Source::Test => sources.test,
        Source::Train => sources.train,
    };
    let Some(split) = split else {
        return Err(Response::error(
            404,
            &format!("source: the server has no {source} images loaded"),
        ));
    };
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    if start.checked_add(m).is_none_or(|end| end > split.len()) {
        return Err(Response::error(
            400,
            &format!(
                "start: images {start} to {start}+{m} run past the {} {source} images; \
                 start + m must be at most {}",
                split.len(),
                split.len()
            ),
        ));
    }
    let batch = Batch::from_split(split, source, start, m)
        .map_err(|e| Response::error(400, &format!("source: {e}")))?;

    let fresh;
    let params = match network {
        Network::Fresh => {
            fresh = HostParams::init(hidden, init, seed);
            &fresh
        }
        Network::Model => sources.model.ok_or_else(|| {
            Response::error(
                404,
                "network: no model loaded for \"model\" (open a run in the Draw view, or \
                 serve with --model RUN); use \"fresh\" for a new network",
            )
        })?,
        Network::Training => sources.training.ok_or_else(|| {
            Response::error(
                409,
                "network: nothing is training, so there are no \"training\" weights; \
                 start a run in the Train view, or use \"fresh\" or \"model\"",
            )
        })?,
    };
    if params.hidden > MAX_HIDDEN {
        return Err(Response::error(
            400,
            &format!(
                "network: the {} network has {} hidden units; the Equations view takes at \
                 most {MAX_HIDDEN}",
                network.name(),
                params.hidden
            ),
        ));
    }
    Workbench::new(params, batch, alpha).map_err(|e| Response::error(500, &e.to_string()))
}

fn init_name(init: Init) -> &'static str {
    match init {
        Init::He => "he",
        Init::Uniform => "uniform",
    }
}

/// The body as a JSON object with no field outside `allowed` (an empty body: no
/// fields).
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Response::error(400, &format!("the body is not JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(Response::error(
            400,
            &format!(
                "the body must be a JSON object with the fields {}",
                allowed.join(", ")
            ),
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Response::error(
            400,
            &format!(
                "unknown field {unknown:?}; expected one of: {}",
                allowed.join(", ")
            ),
        ));
    }
    Ok(fields)
}

/// A whole-number field (`null` or absent: `default`).
fn whole(fields: &Map<String, Value>, name: &str, default: u64) -> Result<u64, Response> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().ok_or_else(|| {
            Response::error(
                400,
                &format!("{name}: expected a whole number from 0 up, got {v}"),
            )
        }),
    }
}

/// `value` of the field `name` within `1..=max`.
fn in_range(name: &str, value: u64, max: usize) -> Result<usize, Response> {
    usize::try_from(value)
        .ok()
        .filter(|v| (1..=max).contains(v))
        .ok_or_else(|| {
            Response::error(
                400,
                &format!("{name}: {value} is out of range; expected 1 to {max}"),
            )
        })
}

/// The `alpha` field: a finite number above 0.
fn alpha_field(fields: &Map<String, Value>) -> Result<f64, Response> {
    let value = fields.get("alpha").unwrap_or(&Value::Null);
    value
        .as_f64()
        .filter(|a| a.is_finite() && *a > 0.0)
        .ok_or_else(|| {
            Response::error(
                400,
                &format!("alpha: expected a finite number above 0, got {value}"),
            )
        })
}

/// A field naming one of `all` (`null` or absent: `default`).
fn word<T: Copy, const N: usize>(
    fields: &Map<String, Value>,
    name: &'static str,
    default: T,
    all: [T; N],
    names: fn(T) -> &'static str,
) -> Result<T, Response> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(w)) => {
            UnknownWord::pick(name, all, names, w).map_err(|e| Response::error(400, &e.to_string()))
        }
        Some(v) => Err(Response::error(
            400,
            &format!(
                "{name}: expected one of {} as a string, got {v}",
                all.map(names).join(", ")
            ),
        )),
    }
}

/// `matrix`, `row` and `col` of a cell's query string.
fn cell_query(query: &str) -> Result<(String, usize, usize), Response> {
    let (mut matrix, mut row, mut col) = (None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Response::error(
                400,
                &format!("query: {pair:?} is not name=value (e.g. matrix=dW2&row=3&col=17)"),
            ));
        };
        let slot = match key {
            "matrix" => &mut matrix,
            "row" => &mut row,
            "col" => &mut col,
            _ => {
                return Err(Response::error(
                    400,
                    &format!("unknown query parameter {key:?}; expected matrix, row and col"),
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(Response::error(400, &format!("{key}: given twice")));
        }
    }
    let Some(matrix) = matrix else {
        return Err(Response::error(
            400,
            "matrix: missing (e.g. matrix=dW2&row=3&col=17)",
        ));
    };
    let index = |name: &str, text: Option<&str>, default: Option<usize>| match (text, default) {
        (Some(t), _) => t.parse::<usize>().map_err(|_| {
            Response::error(
                400,
                &format!("{name}: {t:?} is not a whole number from 0 up"),
            )
        }),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(Response::error(400, &format!("{name}: missing"))),
    };
    let row = index("row", row, None)?;
    let col = index("col", col, Some(0))?;
    Ok((matrix.to_string(), row, col))
}
