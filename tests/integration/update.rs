//! Manual mode's in-place updates (`mnist_nn::update`) against the same arithmetic as
//! Burn operations: equal to the last bit, written over the parameter's own buffer when
//! it holds the only handle, and never over a buffer that something else still reads.

use burn::optim::{AdamConfig, Optimizer, decay::WeightDecayConfig};
use burn::prelude::*;
use burn_flex::Flex;
#[allow(deprecated)]
use burn_ndarray::{NdArray, NdArrayTensor};
use mnist_nn::adam::{BETA_1, BETA_2, EPSILON, coefficients};
use mnist_nn::backend::BackendKind;
use mnist_nn::update::{adam_step, minus_scaled, momentum_step, passes_in_place};

use crate::util::devices;

/// A tensor of `dims` filled from a fixed generator, in about `[−1, 1)`.
fn filled<const D: usize>(dims: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n: usize = dims.iter().product();
    let mut state = seed;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_data(TensorData::new(v, dims), device)
}

/// The values' bits, to compare exactly.
fn bits<const D: usize>(t: &Tensor<D>) -> Vec<u32> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 values")
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// Where a flex or ndarray tensor's values start, to tell an update in place from a new
/// buffer.
#[allow(deprecated)]
fn address<const D: usize>(t: &Tensor<D>) -> usize {
    if let Ok(flex) = t.clone().try_into_primitive::<Flex>() {
        return flex.as_slice::<f32>().expect("contiguous f32").as_ptr() as usize;
    }
    match t
        .clone()
        .try_into_primitive::<NdArray>()
        .expect("a flex or ndarray tensor")
    {
        NdArrayTensor::F32(storage) => storage.view().as_ptr() as usize,
        _ => panic!("not an f32 tensor"),
    }
}

/// `f`'s answer, and how many updates it wrote in place with `mnist_nn::update`'s loops
/// (rather than as Burn operations).
fn passes<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = passes_in_place();
    let answer = f();
    (answer, passes_in_place() - before)
}

/// The two CPU backends, whose updates are written in place. (Burn's own operations on
/// both also reuse a buffer that one tensor alone holds, so the address shows only that
/// no buffer is made; whether the one pass ran, which is its gain in speed, is held by
/// the count of [`passes`].)
const IN_PLACE: [BackendKind; 2] = [BackendKind::Flex, BackendKind::Ndarray];

// Shapes: W1 at hidden 301 (235,984 values: four of the update's parts, the last one
// shorter) and a bias.
const W1: [usize; 2] = [301, 784];

#[test]
fn gradient_descent_in_place_equals_burns_operations_exactly() {
    for kind in IN_PLACE {
        gradient_descent_in_place_on(kind);
    }
}

fn gradient_descent_in_place_on(kind: BackendKind) {
    let device = kind.device().unwrap();
    let (w, d) = (filled(W1, 1, &device), filled(W1, 2, &device));
    let alpha = 0.37;
    let want = bits(&(w.clone() - d.clone().mul_scalar(alpha)));
    let at = address(&w);
    let (got, n) = passes(|| minus_scaled(w, d, alpha));
    assert_eq!(n, 1, "{kind}: w − α·d was not the pass in place");
    assert_eq!(bits(&got), want, "{kind}: w − α·d differs from Burn's");
    assert_eq!(
        address(&got),
        at,
        "{kind}: the sole handle's buffer was not updated in place"
    );
    // A bias (rank 1).
    let (b, db) = (filled([300], 3, &device), filled([300], 4, &device));
    let want = bits(&(b.clone() - db.clone().mul_scalar(alpha)));
    let (got, n) = passes(|| minus_scaled(b, db, alpha));
    assert_eq!(n, 1, "{kind}: the bias's update was not the pass in place");
    assert_eq!(bits(&got), want, "bias");
}

#[test]
fn momentum_in_place_equals_burns_operations_exactly() {
    for kind in IN_PLACE {
        momentum_in_place_on(kind);
    }
}

fn momentum_in_place_on(kind: BackendKind) {
    let device = kind.device().unwrap();
    let (w, v, d) = (
        filled(W1, 5, &device),
        filled(W1, 6, &device),
        filled(W1, 7, &device),
    );
    let (mu, alpha) = (0.9, 0.21);
    let want_v = v.clone().mul_scalar(mu) + d.clone();
    let want_w = bits(&(w.clone() - want_v.clone().mul_scalar(alpha)));
    let want_v = bits(&want_v);
    let (at_w, at_v) = (address(&w), address(&v));
    let ((w2, v2), n) = passes(|| momentum_step(w, Some(v), d.clone(), mu, alpha));
    assert_eq!(n, 1, "{kind}: momentum's step was not the pass in place");
    assert_eq!(
        bits(&v2),
        want_v,
        "{kind}: v' = μ·v + d differs from Burn's"
    );
    assert_eq!(bits(&w2), want_w, "{kind}: w − α·v' differs from Burn's");
    assert_eq!(address(&w2), at_w, "{kind}: w was not updated in place");
    assert_eq!(address(&v2), at_v, "{kind}: v was not updated in place");
    // The first step (no velocity yet): v' = d, w − α·d.
    let w = filled(W1, 8, &device);
    let want_w = bits(&(w.clone() - d.clone().mul_scalar(alpha)));
    let (w3, v3) = momentum_step(w, None, d.clone(), mu, alpha);
    assert_eq!(bits(&w3), want_w, "first step's w");
    assert_eq!(bits(&v3), bits(&d), "first step's velocity is the gradient");
}

#[test]
fn adam_in_place_gives_burns_adam_bits() {
    // Four steps of Burn's own Adam (`Optimizer::step`, the code autodiff mode runs) and
    // of `adam_step` on the same gradients, with and without the L2 penalty: the same
    // bits at every step, on flex and ndarray in place (the moments carried in their own
    // buffers), and through Burn's operations where a second handle on the weights keeps
    // them from being written over (the way wgpu takes). Exact, since both do the same f32
    // operations in the same order on CPUs that round each one correctly; a factor
    // off by one ulp (`1 − β2ᵗ` with the wrong `t`, say) changes many weights' last bit.
    for kind in IN_PLACE {
        let device = kind.device().unwrap();
        for penalty in [None, Some(1e-4)] {
            let burn = AdamConfig::new()
                .with_beta_1(BETA_1)
                .with_beta_2(BETA_2)
                .with_epsilon(EPSILON)
                .with_weight_decay(penalty.map(|p| WeightDecayConfig::new(p as f32)))
                .build();
            let (mut want, mut state) = (filled(W1, 30, &device), None);
            let mut w = filled(W1, 30, &device);
            let (mut m, mut v) = (w.zeros_like(), w.zeros_like());
            let mut shared = (filled(W1, 30, &device), w.zeros_like(), w.zeros_like());
            let alpha = 0.003;
            for t in 1..=4u32 {
                let d = filled(W1, 30 + u64::from(t), &device);
                let d_again = d.clone();
                (want, state) = burn.step(alpha, want, d.clone(), state);
                let at = (address(&w), address(&m), address(&v));
                let n;
                ((w, m, v), n) = passes(|| adam_step(w, m, v, d, &coefficients(t, penalty, alpha)));
                let case = format!("{kind} penalty {penalty:?} step {t}");
                assert_eq!(n, 1, "{case}: not the pass in place");
                assert_eq!(bits(&w), bits(&want), "{case}: the weights");
                let burn_m = &state.as_ref().expect("a state").momentum.moment_1;
                assert_eq!(bits(&m), bits(burn_m), "{case}: the first moments");
                let now = (address(&w), address(&m), address(&v));
                assert_eq!(now, at, "{case}: not updated in place");
                let held = shared.0.clone();
                let (ws, ms, vs) = shared;
                let c = coefficients(t, penalty, alpha);
                let n;
                (shared, n) = passes(|| adam_step(ws, ms, vs, d_again, &c));
                drop(held);
                assert_eq!(n, 0, "{case}: shared weights given to the pass in place");
                assert_eq!(
                    bits(&shared.0),
                    bits(&want),
                    "{case}: Burn's operations' weights"
                );
                assert_eq!(
                    bits(&shared.1),
                    bits(burn_m),
                    "{case}: Burn's operations' moments"
                );
            }
        }
    }
}

#[test]
fn a_subnormal_velocity_is_set_to_zero_on_both_paths() {
    // Every 7th velocity is just above the least normal float, with no gradient: μ·v is
    // subnormal and must come out as zero, in place and through Burn's operations alike
    // (the others are ordinary values and keep μ·v + d).
    let device = BackendKind::Flex.device().unwrap();
    let n = W1[0] * W1[1];
    let tiny = f32::MIN_POSITIVE * 1.05;
    let pick = |i: usize| i.is_multiple_of(7);
    let v_values: Vec<f32> = bits(&filled(W1, 20, &device))
        .iter()
        .enumerate()
        .map(|(i, b)| if pick(i) { tiny } else { f32::from_bits(*b) })
        .collect();
    let d_values: Vec<f32> = bits(&filled(W1, 21, &device))
        .iter()
        .enumerate()
        .map(|(i, b)| if pick(i) { 0.0 } else { f32::from_bits(*b) })
        .collect();
    let make =
        |values: &[f32]| Tensor::<2>::from_data(TensorData::new(values.to_vec(), W1), &device);
    let w_before = bits(&filled(W1, 22, &device));
    // In place: each tensor is the sole handle on its buffer.
    let w = filled(W1, 22, &device);
    let at = address(&w);
    let ((w_in_place, v_in_place), ran) =
        passes(|| momentum_step(w, Some(make(&v_values)), make(&d_values), 0.9, 0.2));
    assert_eq!(ran, 1, "the sole handles' step was not the pass in place");
    assert_eq!(address(&w_in_place), at, "not updated in place");
    // Through Burn's operations: a second handle on the velocity keeps it from being
    // written over.
    let v_shared = make(&v_values);
    let _held = v_shared.clone();
    let w = filled(W1, 22, &device);
    let ((w_ops, v_ops), ran) =
        passes(|| momentum_step(w, Some(v_shared), make(&d_values), 0.9, 0.2));
    assert_eq!(ran, 0, "a shared velocity was given to the pass in place");
    assert_eq!(
        bits(&w_in_place),
        bits(&w_ops),
        "w: in place against Burn's"
    );
    assert_eq!(
        bits(&v_in_place),
        bits(&v_ops),
        "v: in place against Burn's"
    );
    let (v_got, w_got) = (bits(&v_in_place), bits(&w_in_place));
    assert_eq!(v_got.len(), n);
    for i in (0..n).filter(|&i| pick(i)) {
        assert_eq!(
            f32::from_bits(v_got[i]),
            0.0,
            "velocity {i} kept a subnormal"
        );
        assert_eq!(w_got[i], w_before[i], "weight {i} moved on a zero velocity");
    }
    let normal = (0..n).filter(|&i| !pick(i)).all(|i| {
        let want = v_values[i] * 0.9f32 + d_values[i];
        v_got[i] == want.to_bits()
    });
    assert!(normal, "an ordinary velocity was not μ·v + d");
}

#[test]
fn a_shared_buffer_is_never_written() {
    // A parameter (or velocity) that another handle still reads, e.g. the network the
    // live page holds for its before/after view, gets a new buffer; the old values stay.
    for kind in IN_PLACE {
        a_shared_buffer_is_never_written_on(kind);
    }
}

fn a_shared_buffer_is_never_written_on(kind: BackendKind) {
    let device = kind.device().unwrap();
    let (w, v, d) = (
        filled(W1, 9, &device),
        filled(W1, 10, &device),
        filled(W1, 11, &device),
    );
    let (w_seen, v_seen) = (w.clone(), v.clone());
    let (w_before, v_before) = (bits(&w), bits(&v));
    let want = bits(&(w.clone() - d.clone().mul_scalar(0.5)));
    let (got, n) = passes(|| minus_scaled(w.clone(), d.clone(), 0.5));
    assert_eq!(
        n, 0,
        "{kind}: a shared parameter was given to the pass in place"
    );
    assert_eq!(bits(&got), want);
    assert_ne!(
        address(&got),
        address(&w_seen),
        "wrote over a shared buffer"
    );
    drop(w);
    let ((w2, v2), n) = passes(|| momentum_step(w_seen.clone(), Some(v_seen.clone()), d, 0.9, 0.5));
    assert_eq!(
        n, 0,
        "{kind}: shared tensors were given to the pass in place"
    );
    assert_eq!(bits(&w_seen), w_before, "a shared parameter was changed");
    assert_eq!(bits(&v_seen), v_before, "a shared velocity was changed");
    assert_ne!(bits(&w2), w_before, "the update did nothing");
    assert_ne!(bits(&v2), v_before, "the velocity did not move");
}

#[test]
fn every_backend_gets_the_same_update() {
    // wgpu takes Burn's operations, ndarray its own pass in place; their results match
    // flex's in place.
    let flex = BackendKind::Flex.device().unwrap();
    let (w, v, d) = ([40, 784], [40, 784], [40, 784]);
    let reference = {
        let (w, v, d) = (
            filled(w, 12, &flex),
            filled(v, 13, &flex),
            filled(d, 14, &flex),
        );
        let (w, v) = momentum_step(w, Some(v), d, 0.9, 0.3);
        (bits(&w), bits(&v))
    };
    for (kind, device) in devices() {
        let (w, v, d) = (
            filled(w, 12, &device),
            filled(v, 13, &device),
            filled(d, 14, &device),
        );
        let ((w, v), n) = passes(|| momentum_step(w, Some(v), d, 0.9, 0.3));
        let want = u64::from(kind != BackendKind::Wgpu);
        assert_eq!(n, want, "{kind:?}: passes in place");
        if kind == BackendKind::Wgpu {
            // A GPU's compiler may fuse a product and a sum into one multiply-add (one
            // rounding fewer): a few ulps of values of about 1, well below 1e-5.
            for (got, want) in [(bits(&w), &reference.0), (bits(&v), &reference.1)] {
                for (g, r) in got.iter().zip(want.iter()) {
                    let (g, r) = (f32::from_bits(*g), f32::from_bits(*r));
                    assert!((g - r).abs() <= 1e-5, "{kind:?}: {g} against {r}");
                }
            }
            continue;
        }
        // The CPU backends round α·v and μ·v in f32 the same way (no fused
        // multiply-add): equal to the last bit.
        assert_eq!(bits(&w), reference.0, "{kind:?}: w");
        assert_eq!(bits(&v), reference.1, "{kind:?}: v");
    }
}
