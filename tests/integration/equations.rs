//! The Equations view's library side (`mnist_nn::equations`) and its handlers
//! (`mnist_nn::serve::equations`), on real MNIST images.
//!
//! Tolerance of the worked matrices against an independent f64 recomputation of the
//! seed equations: the library computes in f32 (24-bit mantissa, unit round-off
//! u ≈ 6e-8) from the very same f32 parameters and pixels, so the two differ only by
//! f32 rounding. The longest sums are `Z1`'s and `dW1`'s (784 and m terms); a sum of n
//! terms accumulated in f32 errs by at most n·u·Σ|terms| and in practice (blocked
//! matmuls) by about √n·u·Σ|terms|, i.e. ~2e-6 relative to the entries' scale, which
//! then passes through ReLU, softmax and the backward products. We allow 2e-5 relative
//! to each matrix's largest entry. A broken equation errs by far more: a dropped bias
//! by that bias, a missing 1/m by a factor m (8 here), a transposed product or a
//! missing ReLU' mask by whole entries.

use mnist_nn::equations::{
    Batch, ExplainError, Explained, Matrices, Matrix, Source, Workbench, Worked,
};
use mnist_nn::model::{HostParams, Init};
use mnist_nn::serve::equations::{self as api, Bench, Sources};
use mnist_nn::{IMAGE_PIXELS, NUM_CLASSES};

use crate::util::{assert_close, mnist};

/// Relative tolerance of the library's f32 matrices against the f64 recomputation (see
/// the module docs).
const TOL: f64 = 2e-5;

/// Test images 100..108 on a uniform-initialised network (non-zero biases, so that a
/// dropped bias shows), with α = 0.1.
fn bench(hidden: usize, init: Init, start: usize, m: usize) -> Workbench {
    let batch = Batch::from_split(&mnist().test, Source::Test, start, m).expect("batch");
    Workbench::new(&HostParams::init(hidden, init, 7), batch, 0.1).expect("workbench")
}

fn f64s(m: &Matrix) -> Vec<f64> {
    m.values().iter().map(|&v| f64::from(v)).collect()
}

/// The seed equations in f64 on the host, written out loop by loop from the
/// parameters and the batch's pixel bytes: no library code but the data reader.
struct Seed {
    h: usize,
    m: usize,
    x: Vec<f64>,
    z1: Vec<f64>,
    a1: Vec<f64>,
    z2: Vec<f64>,
    a2: Vec<f64>,
    dz2: Vec<f64>,
    dw2: Vec<f64>,
    db2: Vec<f64>,
    dz1: Vec<f64>,
    dw1: Vec<f64>,
    db1: Vec<f64>,
    loss: f64,
}

impl Seed {
    fn new(p: &HostParams, batch: &Batch) -> Self {
        let (h, m, n, c) = (p.hidden, batch.m(), IMAGE_PIXELS, NUM_CLASSES);
        let w1 = |i: usize, q: usize| f64::from(p.w1[i * n + q]);
        let w2 = |d: usize, j: usize| f64::from(p.w2[d * h + j]);
        let mut x = vec![0.0; n * m];
        for k in 0..m {
            for q in 0..n {
                x[q * m + k] = f64::from(batch.pixels[k * n + q]) / 255.0;
            }
        }
        let mut y = vec![0.0; c * m];
        for (k, &l) in batch.labels.iter().enumerate() {
            y[usize::from(l) * m + k] = 1.0;
        }
        let mut z1 = vec![0.0; h * m];
        for i in 0..h {
            for k in 0..m {
                z1[i * m + k] =
                    (0..n).map(|q| w1(i, q) * x[q * m + k]).sum::<f64>() + f64::from(p.b1[i]);
            }
        }
        let a1: Vec<f64> = z1.iter().map(|&z| z.max(0.0)).collect();
        let mut z2 = vec![0.0; c * m];
        for d in 0..c {
            for k in 0..m {
                z2[d * m + k] =
                    (0..h).map(|j| w2(d, j) * a1[j * m + k]).sum::<f64>() + f64::from(p.b2[d]);
            }
        }
        let mut a2 = vec![0.0; c * m];
        let mut loss = 0.0;
        for k in 0..m {
            let total: f64 = (0..c).map(|d| z2[d * m + k].exp()).sum();
            for d in 0..c {
                a2[d * m + k] = z2[d * m + k].exp() / total;
            }
            loss -= a2[usize::from(batch.labels[k]) * m + k].ln() / m as f64;
        }
        let dz2: Vec<f64> = a2.iter().zip(&y).map(|(a, y)| a - y).collect();
        let mut dw2 = vec![0.0; c * h];
        for d in 0..c {
            for j in 0..h {
                dw2[d * h + j] =
                    (0..m).map(|k| dz2[d * m + k] * a1[j * m + k]).sum::<f64>() / m as f64;
            }
        }
        let db2: Vec<f64> = (0..c)
            .map(|d| (0..m).map(|k| dz2[d * m + k]).sum::<f64>() / m as f64)
            .collect();
        let mut dz1 = vec![0.0; h * m];
        for i in 0..h {
            for k in 0..m {
                let back: f64 = (0..c).map(|d| w2(d, i) * dz2[d * m + k]).sum();
                dz1[i * m + k] = if z1[i * m + k] > 0.0 { back } else { 0.0 };
            }
        }
        let mut dw1 = vec![0.0; h * n];
        for i in 0..h {
            for q in 0..n {
                dw1[i * n + q] =
                    (0..m).map(|k| dz1[i * m + k] * x[q * m + k]).sum::<f64>() / m as f64;
            }
        }
        let db1: Vec<f64> = (0..h)
            .map(|i| (0..m).map(|k| dz1[i * m + k]).sum::<f64>() / m as f64)
            .collect();
        Seed {
            h,
            m,
            x,
            z1,
            a1,
            z2,
            a2,
            dz2,
            dw2,
            db2,
            dz1,
            dw1,
            db1,
            loss,
        }
    }
}

fn shape(m: &Matrix) -> (usize, usize) {
    (m.rows(), m.cols())
}

#[test]
fn equations_worked_matrices_follow_the_seed_equations() {
    for (hidden, init, start, m) in [(16, Init::Uniform, 100, 8), (5, Init::He, 0, 1)] {
        let bench = bench(hidden, init, start, m);
        let w = bench.worked().expect("worked");
        let params = bench.net().to_host().expect("parameters read back");
        let seed = Seed::new(&params, bench.batch());
        let (h, mm) = (seed.h, seed.m);
        let ms = &w.matrices;
        assert_eq!((w.m, w.hidden, w.step), (m, hidden, 0));
        assert_eq!(w.indices, (start..start + m).collect::<Vec<_>>());
        assert_eq!(w.labels, mnist().test.labels[start..start + m].to_vec());
        // Shapes in seed notation, one column per image.
        let shapes = [
            ("X", (IMAGE_PIXELS, mm)),
            ("W1", (h, IMAGE_PIXELS)),
            ("b1", (h, 1)),
            ("Z1", (h, mm)),
            ("A1", (h, mm)),
            ("W2", (NUM_CLASSES, h)),
            ("b2", (NUM_CLASSES, 1)),
            ("Z2", (NUM_CLASSES, mm)),
            ("A2", (NUM_CLASSES, mm)),
            ("Y", (NUM_CLASSES, mm)),
            ("dZ2", (NUM_CLASSES, mm)),
            ("dW2", (NUM_CLASSES, h)),
            ("db2", (NUM_CLASSES, 1)),
            ("dZ1", (h, mm)),
            ("dW1", (h, IMAGE_PIXELS)),
            ("db1", (h, 1)),
        ];
        assert_eq!(shapes.len(), Matrices::NAMES.len());
        for (name, want) in shapes {
            let got = ms.get(name).map(shape);
            assert_eq!(got, Some(want), "{name}'s shape");
        }
        let params_as = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
        assert_eq!(f64s(&ms.W1), params_as(&params.w1));
        assert_eq!(f64s(&ms.b2), params_as(&params.b2));
        for (name, got, want) in [
            ("X", &ms.X, &seed.x),
            ("Z1", &ms.Z1, &seed.z1),
            ("A1", &ms.A1, &seed.a1),
            ("Z2", &ms.Z2, &seed.z2),
            ("A2", &ms.A2, &seed.a2),
            ("dZ2", &ms.dZ2, &seed.dz2),
            ("dW2", &ms.dW2, &seed.dw2),
            ("db2", &ms.db2, &seed.db2),
            ("dZ1", &ms.dZ1, &seed.dz1),
            ("dW1", &ms.dW1, &seed.dw1),
            ("db1", &ms.db1, &seed.db1),
        ] {
            assert_close(name, &f64s(got), want, TOL);
        }
        assert!(
            (w.loss - seed.loss).abs() <= TOL * seed.loss,
            "loss {} against {}",
            w.loss,
            seed.loss
        );
        // The predictions are the rows of each column's largest A2.
        for (k, &p) in w.predictions.iter().enumerate() {
            let best = (0..NUM_CLASSES)
                .max_by(|&a, &b| seed.a2[a * mm + k].total_cmp(&seed.a2[b * mm + k]))
                .expect("10 classes");
            assert_eq!(p, best, "prediction of image {k}");
        }
    }
}

#[test]
fn equations_autodiff_gradients_match_the_manual_ones() {
    let bench = bench(16, Init::Uniform, 100, 8);
    let w = bench.worked().expect("worked");
    let seed = Seed::new(&bench.net().to_host().expect("params"), bench.batch());
    let ad = &w.autodiff;
    // Autodiff's own matrices are gradients in their own right (not copies of the
    // manual ones): each against the f64 seed.
    assert_close("autodiff dW1", &f64s(&ad.dW1), &seed.dw1, TOL);
    assert_close("autodiff db1", &f64s(&ad.db1), &seed.db1, TOL);
    assert_close("autodiff dW2", &f64s(&ad.dW2), &seed.dw2, TOL);
    assert_close("autodiff db2", &f64s(&ad.db2), &seed.db2, TOL);
    // The reported differences are those of the matrices sent.
    let d = ad.max_abs_diff;
    let ms = &w.matrices;
    assert_eq!(d.dW1, ms.dW1.max_abs_diff(&ad.dW1));
    assert_eq!(d.db1, ms.db1.max_abs_diff(&ad.db1));
    assert_eq!(d.dW2, ms.dW2.max_abs_diff(&ad.dW2));
    assert_eq!(d.db2, ms.db2.max_abs_diff(&ad.db2));
    assert_eq!(ad.largest, d.dW1.max(d.db1).max(d.dW2).max(d.db2));
    // Both are f32 sums of the same terms in different orders (see gradients.rs).
    let scale = seed
        .dw1
        .iter()
        .chain(&seed.dw2)
        .fold(0.0f64, |a, b| a.max(b.abs()));
    eprintln!(
        "largest |manual − autodiff| = {:e} (gradient scale {scale:e})",
        ad.largest
    );
    assert!(ad.largest <= TOL * scale, "largest {}", ad.largest);
}

#[test]
fn equations_step_applies_gradient_descent_and_lowers_the_loss() {
    let mut bench = bench(16, Init::Uniform, 100, 8);
    let before = bench.worked().expect("worked");
    let alpha = bench.alpha();
    let after = bench.step().expect("step");
    let stepped = after.stepped.expect("stepped is filled after a step");
    assert_eq!(after.step, 1);
    assert_eq!(stepped.loss_before, before.loss);
    assert_eq!(stepped.loss_after, after.loss);
    assert!(
        after.loss < before.loss,
        "loss {} → {}",
        before.loss,
        after.loss
    );
    // W −= α·dW for each parameter, from the gradients shown before the step. Each
    // side rounds once in f32 (α·dW, then the difference): within 2 ulps of |W| ≤ 1.
    let b = &before.matrices;
    let a = &after.matrices;
    for (name, w0, dw, w1) in [
        ("W1", &b.W1, &b.dW1, &a.W1),
        ("b1", &b.b1, &b.db1, &a.b1),
        ("W2", &b.W2, &b.dW2, &a.W2),
        ("b2", &b.b2, &b.db2, &a.b2),
    ] {
        let want: Vec<f64> = f64s(w0)
            .iter()
            .zip(f64s(dw))
            .map(|(w, g)| w - alpha * g)
            .collect();
        let (diff, _) = crate::util::max_diff(&f64s(w1), &want);
        assert!(diff <= 2.5e-7, "{name}: |new − (W − α·dW)| = {diff:e}");
        assert!(w1.max_abs_diff(w0) > 0.0, "{name} did not move");
    }
    // And everything is worked again for the new weights.
    let seed = Seed::new(&bench.net().to_host().expect("params"), bench.batch());
    assert_close("Z1 after the step", &f64s(&a.Z1), &seed.z1, TOL);
    assert_close("dW1 after the step", &f64s(&a.dW1), &seed.dw1, TOL);
    assert_eq!(bench.worked().expect("worked").stepped, Some(stepped));
}

/// Cells worth explaining in `m`: its corners, a middle one and its largest entry (so
/// that a non-zero sum is checked too).
fn cells(m: &Matrix) -> Vec<(usize, usize)> {
    let (r, c) = (m.rows(), m.cols());
    let largest = m
        .values()
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map_or(0, |(i, _)| i);
    vec![
        (0, 0),
        (r - 1, c - 1),
        (r / 2, c / 2),
        (largest / c, largest % c),
    ]
}

#[test]
fn equations_explain_sums_agree_with_the_library_values() {
    let mut bench = bench(16, Init::Uniform, 100, 8);
    bench.step().expect("step"); // explained after an update too
    let w = bench.worked().expect("worked");
    for name in Matrices::NAMES {
        let matrix = w.matrices.get(name).expect("every name is a matrix");
        let mut nonzero = false;
        for (row, col) in cells(matrix) {
            let e: Explained = bench.explain(name, row, col).expect("explained");
            assert_eq!((e.matrix.as_str(), e.row, e.col), (name, row, col));
            assert_eq!(Some(e.value), matrix.get(row, col));
            for t in &e.terms {
                if name != "A2" {
                    let product: f64 = t.factors.iter().product();
                    assert_eq!(t.product, product, "{name}[{row},{col}] term {}", t.k);
                }
            }
            // f32 precision of the terms' magnitude (see the module docs).
            let magnitude: f64 = e.terms.iter().map(|t| t.product.abs()).sum::<f64>();
            let tol = TOL * (1.0 + f64::from(e.value).abs() + magnitude);
            assert!(
                (e.sum - f64::from(e.value)).abs() <= tol,
                "{name}[{row},{col}]: sum {} but the library's value is {} ({})",
                e.sum,
                e.value,
                e.text
            );
            assert!(e.text.starts_with(&format!("{name}[{row}")), "{}", e.text);
            nonzero |= e.sum != 0.0;
            eprintln!("{}\n  {}", e.formula, e.text);
        }
        assert!(nonzero, "{name}: every explained cell was 0");
    }
    let h = w.hidden;
    let terms = |name: &str, row, col| bench.explain(name, row, col).expect(name).terms.len();
    assert_eq!(
        terms("Z1", 3, 2),
        IMAGE_PIXELS + 1,
        "784 products and the bias"
    );
    assert_eq!(terms("Z2", 3, 2), h + 1);
    assert_eq!(terms("A2", 3, 2), NUM_CLASSES);
    assert_eq!(terms("dZ1", 3, 2), NUM_CLASSES);
    assert_eq!(terms("dW2", 3, 5), w.m);
    assert_eq!(terms("dW1", 3, 300), w.m);
    let dw2 = bench.explain("dW2", 3, 5).expect("dW2");
    assert_eq!(dw2.formula, "dW2[3,5] = (1/m)·Σ_k dZ2[3,k]·A1[5,k]");
    assert!(dw2.text.starts_with("dW2[3,5] = (1/8)·("), "{}", dw2.text);
    let z1 = bench.explain("Z1", 3, 2).expect("Z1");
    assert!(z1.text.contains("… (784 terms"), "{}", z1.text);
    assert!(matches!(
        bench.explain("dW3", 0, 0),
        Err(ExplainError::UnknownMatrix { .. })
    ));
    let out = bench.explain("dW2", NUM_CLASSES, 0).unwrap_err();
    assert!(matches!(out, ExplainError::OutOfRange { rows: 10, .. }));
    assert!(out.to_string().contains("row 0 to 9"), "{out}");
    assert!(matches!(
        bench.explain("b1", 0, 1),
        Err(ExplainError::OutOfRange { .. })
    ));
}

// ---- the handlers ----

fn sources<'a>(model: Option<&'a HostParams>, training: Option<&'a HostParams>) -> Sources<'a> {
    let data = mnist();
    Sources {
        train: Some(&data.train),
        test: Some(&data.test),
        model,
        training,
    }
}

/// Status and JSON body of a handler's response.
macro_rules! call {
    ($response:expr) => {{
        let r = $response;
        let json: serde_json::Value = serde_json::from_slice(&r.body).expect("the answer is JSON");
        (r.status, json)
    }};
}

fn error_of(json: &serde_json::Value) -> String {
    json["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn equations_api_starts_steps_and_explains() {
    let bench = Bench::default();
    let (status, json) = call!(api::get(&bench));
    assert_eq!(status, 404, "{json}");
    let (status, _) = call!(api::step(&bench, b""));
    assert_eq!(status, 404);
    let (status, _) = call!(api::cell(&bench, "matrix=W1&row=0&col=0"));
    assert_eq!(status, 404);

    let (status, json) = call!(api::start(&bench, b"{}", &sources(None, None)));
    assert_eq!(status, 200, "{json}");
    // The contract's WORKED, key for key.
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    let sorted = |names: &[&str]| {
        let mut k: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&json),
        sorted(&[
            "step",
            "m",
            "hidden",
            "alpha",
            "source",
            "indices",
            "labels",
            "predictions",
            "loss",
            "stepped",
            "matrices",
            "autodiff"
        ])
    );
    assert_eq!(keys(&json["matrices"]), sorted(&Matrices::NAMES));
    assert_eq!(
        keys(&json["autodiff"]),
        sorted(&["dW1", "db1", "dW2", "db2", "max_abs_diff", "largest"])
    );
    assert_eq!(
        keys(&json["matrices"]["dW2"]),
        sorted(&["rows", "cols", "f32"])
    );
    assert_eq!(json["matrices"]["dW2"]["rows"], 10);
    assert_eq!(json["matrices"]["dW2"]["cols"], 16);
    assert_eq!(json["matrices"]["X"]["cols"], 8);
    assert_eq!(json["source"], "test");
    assert_eq!(json["stepped"], serde_json::Value::Null);
    assert_eq!(json["alpha"], 0.1);

    // The defaults are those of a workbench built directly: the same numbers.
    let sent: Worked = serde_json::from_value(json).expect("WORKED reads back");
    let direct = {
        let batch = Batch::from_split(&mnist().test, Source::Test, 0, 8).expect("batch");
        Workbench::new(&HostParams::init(16, Init::He, 1), batch, 0.1).expect("bench")
    };
    assert_eq!(sent, direct.worked().expect("worked"));

    let (status, json) = call!(api::get(&bench));
    assert_eq!((status, &json["step"]), (200, &serde_json::json!(0)));

    let (status, json) = call!(api::step(&bench, br#"{"alpha": 0.05}"#));
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["step"], 1);
    assert_eq!(json["alpha"], 0.05);
    let before = json["stepped"]["loss_before"]
        .as_f64()
        .expect("loss_before");
    let after = json["stepped"]["loss_after"].as_f64().expect("loss_after");
    assert!(after < before, "{before} → {after}");
    let (status, json) = call!(api::step(&bench, b""));
    assert_eq!(
        (status, &json["step"], &json["alpha"]),
        (200, &2.into(), &0.05.into())
    );

    let (status, json) = call!(api::cell(&bench, "matrix=dW2&row=3&col=5"));
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        keys(&json),
        sorted(&[
            "matrix", "row", "col", "value", "formula", "terms", "sum", "text"
        ])
    );
    assert_eq!(
        keys(&json["terms"][0]),
        sorted(&["k", "factors", "product"])
    );
    assert_eq!(json["terms"].as_array().map(Vec::len), Some(8));
    let (status, json) = call!(api::cell(&bench, "matrix=b1&row=2"));
    assert_eq!((status, &json["col"]), (200, &0.into()), "{json}");

    // Bad queries: 400 naming the parameter, 404 for a cell outside the matrix.
    for (query, status, names) in [
        ("matrix=dW3&row=0&col=0", 400, "matrix"),
        ("row=0&col=0", 400, "matrix"),
        ("matrix=dW2&col=0", 400, "row"),
        ("matrix=dW2&row=x&col=0", 400, "row"),
        ("matrix=dW2&row=0&col=-1", 400, "col"),
        ("matrix=dW2&row=0&col=0&row=1", 400, "row"),
        ("matrix=dW2&row=0&col=0&size=3", 400, "size"),
        ("matrix=dW2&row", 400, "row"),
        ("matrix=dW2&row=10&col=0", 404, "row 0 to 9"),
        ("matrix=X&row=0&col=8", 404, "col 0 to 7"),
    ] {
        let (got, json) = call!(api::cell(&bench, query));
        assert_eq!(got, status, "{query}: {json}");
        assert!(error_of(&json).contains(names), "{query}: {json}");
    }
    // Bad step bodies leave the workbench as it was.
    for (body, names) in [
        (r#"{"alpha": 0}"#, "alpha"),
        (r#"{"alpha": -1}"#, "alpha"),
        (r#"{"alpha": "big"}"#, "alpha"),
        (r#"{"beta": 1}"#, "beta"),
    ] {
        let (got, json) = call!(api::step(&bench, body.as_bytes()));
        assert_eq!(got, 400, "{body}: {json}");
        assert!(error_of(&json).contains(names), "{body}: {json}");
    }
    let (_, json) = call!(api::get(&bench));
    assert_eq!((&json["step"], &json["alpha"]), (&2.into(), &0.05.into()));
}

#[test]
fn equations_api_refuses_bad_start_bodies_naming_the_field() {
    let bench = Bench::default();
    let test_len = mnist().test.len();
    let train_len = mnist().train.len();
    let past_test = format!(r#"{{"start": {}, "m": 8}}"#, test_len - 7);
    let past_train = format!(
        r#"{{"source": "train", "start": {}, "m": 2}}"#,
        train_len - 1
    );
    for (body, status, names) in [
        (r#"{"m": 0}"#, 400, "m: 0"),
        (r#"{"m": 65}"#, 400, "m: 65"),
        (r#"{"m": -1}"#, 400, "m:"),
        (r#"{"m": 2.5}"#, 400, "m:"),
        (r#"{"hidden": 0}"#, 400, "hidden"),
        (r#"{"hidden": 1025}"#, 400, "hidden"),
        (r#"{"hidden": "16"}"#, 400, "hidden"),
        (r#"{"seed": -3}"#, 400, "seed"),
        (&past_test, 400, "start"),
        (&past_train, 400, "start"),
        (r#"{"start": 18446744073709551615}"#, 400, "start"),
        (r#"{"alpha": 0}"#, 400, "alpha"),
        (r#"{"alpha": -0.1}"#, 400, "alpha"),
        (r#"{"alpha": 1e999}"#, 400, "JSON"),
        (r#"{"network": "old"}"#, 400, "network"),
        (r#"{"network": 1}"#, 400, "network"),
        (r#"{"source": "valid"}"#, 400, "source"),
        (r#"{"init": "xavier"}"#, 400, "init"),
        (r#"{"hiden": 16}"#, 400, "hiden"),
        ("[1, 2]", 400, "object"),
        ("{", 400, "JSON"),
        (r#"{"network": "model"}"#, 404, "model"),
        (r#"{"network": "training"}"#, 409, "training"),
    ] {
        let (got, json) = call!(api::start(&bench, body.as_bytes(), &sources(None, None)));
        assert_eq!(got, status, "{body}: {json}");
        assert!(error_of(&json).contains(names), "{body}: {json}");
    }
    // Nothing was started by any of them.
    assert_eq!(call!(api::get(&bench)).0, 404);

    // The last images of a split, and the empty body's defaults.
    let last = format!(r#"{{"start": {}, "m": 8}}"#, test_len - 8);
    assert_eq!(
        call!(api::start(&bench, last.as_bytes(), &sources(None, None))).0,
        200
    );
    assert_eq!(call!(api::start(&bench, b"", &sources(None, None))).0, 200);
    // Without the split asked for.
    let no_train = Sources {
        train: None,
        ..sources(None, None)
    };
    let (got, json) = call!(api::start(&bench, br#"{"source": "train"}"#, &no_train));
    assert_eq!(got, 404, "{json}");
    assert!(error_of(&json).contains("source"), "{json}");
}

#[test]
fn equations_api_starts_from_the_model_or_the_training_weights() {
    let bench = Bench::default();
    let model = HostParams::init(12, Init::Uniform, 3);
    let training = HostParams::init(9, Init::He, 4);
    let both = sources(Some(&model), Some(&training));
    for (network, params) in [("model", &model), ("training", &training)] {
        let body =
            format!(r#"{{"network": "{network}", "hidden": 100, "source": "train", "m": 3}}"#);
        let (status, json) = call!(api::start(&bench, body.as_bytes(), &both));
        assert_eq!(status, 200, "{json}");
        let worked: Worked = serde_json::from_value(json).expect("WORKED");
        // The network's own weights (its hidden size, not the body's), on train images.
        assert_eq!(worked.hidden, params.hidden);
        assert_eq!(worked.source, Source::Train);
        let w1: Vec<f32> = worked.matrices.W1.values().to_vec();
        assert_eq!(w1, params.w1);
        assert_eq!(worked.matrices.b1.values(), params.b1.as_slice());
    }
}
