//! The sparse products with `X` (`src/sparse.rs`): the same numbers as the dense ones,
//! on real digits and on shapes that exercise every edge of the blocked loops.

use burn::prelude::*;
use mnist_nn::IMAGE_PIXELS;
use mnist_nn::backend::BackendKind;
use mnist_nn::config::Config;
use mnist_nn::data::pixel_value;
use mnist_nn::input::{Input, InputProduct, Products};
use mnist_nn::learner::Learner;
use mnist_nn::manual::manual_pass;
use mnist_nn::model::{Init, TwoLayerNet};
use mnist_nn::nonzeros::SplitNonzeros;
use mnist_nn::sparse::{Kernels, SparseX};
use mnist_nn::train::train;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::util::{assert_close, mnist, root, small_mnist, values};

/// `m` training digits from `first` on, as the `(m, 784)` rows of pixels in `[0, 1]`.
fn digits(first: usize, m: usize) -> Vec<f32> {
    let pixels = &mnist().train.pixels[first * IMAGE_PIXELS..(first + m) * IMAGE_PIXELS];
    pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
}

/// `X` `(784, m)` on `device` from rows of pixels.
fn x_of(rows: &[f32], m: usize, device: &Device) -> Tensor<2> {
    Tensor::<2>::from_data(TensorData::new(rows.to_vec(), [m, IMAGE_PIXELS]), device).transpose()
}

/// A `(rows, cols)` matrix of normal-ish values from `seed`.
fn matrix(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..rows * cols)
        .map(|_| rng.random::<f32>() - rng.random::<f32>())
        .collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// Asserts `|sparse − dense| ≤ n·ε·(|A|·|B|)` entrywise: the classic bound on the
/// rounding error of a float sum of `n` products (each entry's sum of absolute terms
/// times `n` units of roundoff), so any wrong or missing term shows while a different
/// order of the same terms passes. `abs_product` is `|A|·|B|` computed densely.
fn assert_within_sum_bound(
    what: &str,
    sparse: Tensor<2>,
    dense: Tensor<2>,
    abs_product: Tensor<2>,
    n: usize,
) {
    assert_eq!(sparse.dims(), dense.dims(), "{what}: shapes");
    let (s, d, a) = (values(sparse), values(dense), values(abs_product));
    let mut worst = 0.0f64;
    for i in 0..d.len() {
        let bound = n as f64 * f64::from(f32::EPSILON) * a[i] + 1e-30;
        let diff = (s[i] - d[i]).abs();
        assert!(
            diff <= bound,
            "{what}: entry {i}: sparse {} dense {} (bound {bound:e})",
            s[i],
            d[i]
        );
        worst = worst.max(diff / bound);
    }
    eprintln!("{what}: largest difference {worst:.3} of its bound");
}

/// Every variant of the loops (plain Rust, AVX2, AVX-512) that this CPU runs is checked,
/// so that the plain loops are tested on x86-64 too.
#[test]
fn sparse_products_equal_the_dense_ones() {
    let variants: Vec<Kernels> = Kernels::ALL.into_iter().filter(|k| k.runs_here()).collect();
    // No test chooses another variant, so the products run the widest by default.
    assert_eq!(Kernels::preferred(), Kernels::widest());
    eprintln!("loops checked: {variants:?}");
    let device = BackendKind::Flex.device().expect("flex");
    // Real digits at a training batch's size; then odd sizes: 100 rows (a block of 64
    // and a ragged one of 36, not a multiple of the 8×8 tiles), 13 and 1 images, and
    // an image with no ink at all (its column of Z1 is 0, and no pixel lists it).
    let mut blank_and_digits = vec![0.0f32; IMAGE_PIXELS];
    blank_and_digits.extend(digits(500, 12));
    let cases = [
        (512, digits(0, 128), 128),
        (100, blank_and_digits, 13),
        (64, digits(9, 1), 1),
    ];
    for (rows, images, m) in cases {
        let x = x_of(&images, m, &device);
        let sparse = SparseX::from_images(&images, m);
        assert!(sparse.density() < 0.35, "digits are mostly background");
        let w = matrix(rows, IMAGE_PIXELS, 1, &device);
        let d = matrix(rows, m, 2, &device);
        for &loops in &variants {
            assert_within_sum_bound(
                &format!("W·X, {rows} rows, m = {m}, {loops:?}"),
                sparse.left_product_with(w.clone(), loops),
                w.clone().matmul(x.clone()),
                w.clone().abs().matmul(x.clone()),
                IMAGE_PIXELS,
            );
            assert_within_sum_bound(
                &format!("D·Xᵀ, {rows} rows, m = {m}, {loops:?}"),
                sparse.right_product_t_with(d.clone(), loops),
                d.clone().matmul(x.clone().transpose()),
                d.clone().abs().matmul(x.clone().transpose()),
                m,
            );
        }
    }
}

#[test]
fn sparse_x_lists_every_nonzero_once() {
    let images = digits(40, 20);
    let sparse = SparseX::from_images(&images, 20);
    let nonzero = images.iter().filter(|&&p| p != 0.0).count();
    assert_eq!(sparse.nonzeros(), nonzero);
    assert_eq!(sparse.images(), 20);
    let want = nonzero as f64 / images.len() as f64;
    assert!((sparse.density() - want).abs() < 1e-12);
}

#[test]
fn a_step_picks_sparse_products_only_where_they_pay() {
    let device = BackendKind::Flex.device().expect("flex");
    let digits_x = || x_of(&digits(0, 64), 64, &device);
    assert!(matches!(
        Input::for_batch(digits_x(), 512),
        Input::Sparse(_)
    ));
    // Fewer hidden units than a block: dense.
    assert!(matches!(Input::for_batch(digits_x(), 10), Input::Dense(_)));
    // A small step (configs/sgd.toml's hidden 128 at batch 64): dense.
    assert!(matches!(Input::for_batch(digits_x(), 128), Input::Dense(_)));
    assert!(matches!(
        Input::for_batch(digits_x(), 256),
        Input::Sparse(_)
    ));
    // Uniform noise (every pixel nonzero): dense.
    let noise = matrix(64, IMAGE_PIXELS, 3, &device).abs();
    assert!(matches!(
        Input::for_batch(noise.transpose(), 512),
        Input::Dense(_)
    ));
    // The rule that keeps dense products.
    assert!(matches!(
        Products::Dense.input(digits_x(), 512),
        Input::Dense(_)
    ));
    // On ndarray and on the GPU the batch stays dense.
    for kind in [BackendKind::Ndarray, BackendKind::Wgpu] {
        if let Ok(other) = kind.device() {
            let x = x_of(&digits(0, 8), 8, &other);
            assert!(
                matches!(Input::for_batch(x, 512), Input::Dense(_)),
                "{kind}"
            );
        }
    }
}

#[test]
fn a_manual_pass_on_sparse_x_gives_the_dense_gradients() {
    let device = BackendKind::Flex.device().expect("flex");
    let net = TwoLayerNet::new(256, Init::He, 5, &device);
    let images = digits(1000, 128);
    let labels = &mnist().train.labels[1000..1128];
    let mut one_hot = vec![0.0f32; 128 * 10];
    for (i, &l) in labels.iter().enumerate() {
        one_hot[i * 10 + usize::from(l)] = 1.0;
    }
    let y = Tensor::<2>::from_data(TensorData::new(one_hot, [128, 10]), &device).transpose();
    let x = x_of(&images, 128, &device);
    let (loss_d, z2_d, g_d) = manual_pass(&net, Input::Dense(x.clone()), y.clone());
    let (loss_s, z2_s, g_s) =
        manual_pass(&net, Input::Sparse(SparseX::from_images(&images, 128)), y);
    // f32 sums of up to 784 terms in another order: relative differences of a few
    // units of roundoff, far below 1e-5 of the largest entry; a missing or doubled
    // term moves an entry by about 1/150 of it.
    assert_close("loss", &values(loss_s), &values(loss_d), 1e-5);
    assert_close("Z2", &values(z2_s), &values(z2_d), 1e-5);
    assert_close("dW1", &values(g_s.dw1), &values(g_d.dw1), 1e-5);
    assert_close("db1", &values(g_s.db1), &values(g_d.db1), 1e-5);
    assert_close("dW2", &values(g_s.dw2), &values(g_d.dw2), 1e-5);
    assert_close("db2", &values(g_s.db2), &values(g_d.db2), 1e-5);
    // And the products on the Input itself.
    let w = net.W1.val();
    let sparse = Input::Sparse(SparseX::from_images(&images, 128));
    assert_close(
        "W1·X",
        &values(w.clone().matmul_x(&sparse)),
        &values(w.matmul_x(&Input::Dense(x))),
        1e-5,
    );
}

#[test]
fn training_with_sparse_products_follows_the_dense_run() {
    // Two epochs of 1,000 digits with momentum at hidden 256: the runs may part only
    // by float rounding, which momentum and 20 steps carry but do not grow much;
    // 1e-4 relative on the losses is a hundred times the last runs' differences
    // (README: the two modes' losses differ in the 8th digit), and a wrong product
    // would give another loss from the first step. With augmentation, the sparse run's
    // batches come listed from the threads that make them: a listing that lost or
    // moved a pixel, or swapped images, would part the runs as much.
    let device = BackendKind::Flex.device().expect("flex");
    let data = small_mnist();
    let losses = |sparse: bool, augment: &str| {
        let text = format!(
            "name = \"t\"\nseed = 3\nmode = \"manual\"\n[model]\nhidden = 256\n\
             [train]\nepochs = 2\nbatch_size = 100\nlearning_rate = 0.1\noptimizer = \"momentum\"\n\
             sparse_input = {sparse}\n{augment}[data]\ndir = \"data/mnist\"\n"
        );
        let config = Config::parse(&text, &root().join("t.toml")).expect("config");
        let model = TwoLayerNet::new(256, Init::He, 3, &device);
        let trained = train(&config, model, &data, &device, &mut ()).expect("trains");
        trained
            .history
            .iter()
            .flat_map(|e| [e.train.loss, e.test.as_ref().map_or(0.0, |t| t.loss)])
            .collect::<Vec<f64>>()
    };
    let mut plain = Vec::new();
    for augment in [
        "",
        "[train.augment]\nshift = 2\nrotation = 10\nelastic_alpha = 34\n",
    ] {
        let (sparse, dense) = (losses(true, augment), losses(false, augment));
        assert_close(&format!("losses, {augment:?}"), &sparse, &dense, 1e-4);
        // Not bit for bit: the sums ran in another order, so the sparse products were
        // taken.
        assert_ne!(
            sparse, dense,
            "the run with sparse_input = true took the dense products ({augment:?})"
        );
        plain.push(sparse);
    }
    assert_ne!(plain[0], plain[1], "the augmented run was not augmented");
}

#[test]
fn listed_batches_equal_the_gathered_ones() {
    // The training split's nonzeros listed once, then any batch of its images put
    // together from the lists: exactly the SparseX that scanning the gathered images
    // gives (same entries, same order, same values), blank images included.
    let m = 300;
    let mut pixels = mnist().train.pixels[..m * IMAGE_PIXELS].to_vec();
    pixels.extend(std::iter::repeat_n(0u8, IMAGE_PIXELS)); // image 300: blank
    let listed = SplitNonzeros::of(&pixels);
    assert_eq!(listed.len(), m + 1);
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut batch: Vec<usize> = (0..64).map(|_| rng.random_range(0..=m)).collect();
    batch[5] = m;
    let rows: Vec<f32> = batch
        .iter()
        .flat_map(|&i| pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS].iter())
        .map(|&p| pixel_value(p))
        .collect();
    let gathered = SparseX::from_images(&rows, batch.len());
    assert!(gathered.nonzeros() > 0);
    assert_eq!(listed.count(&batch), gathered.nonzeros());
    assert_eq!(listed.batch(&batch), gathered);
    assert_eq!(listed.batch(&[]), SparseX::from_images(&[], 0));
}

#[test]
fn a_step_on_a_listed_batch_equals_the_step_on_its_images() {
    // The training loop steps on listed batches; the network after two momentum steps
    // must be the one the gathered images give, to the last bit.
    let device = BackendKind::Flex.device().expect("flex");
    let data = small_mnist();
    let listed = SplitNonzeros::of(&data.train.pixels);
    let tensors = data.train.to_device(&device);
    let learner = || {
        let net = TwoLayerNet::new(128, Init::He, 4, &device);
        Learner::ManualMomentum(net, None, Products::SparseWherePays)
    };
    let (mut on_images, mut on_lists) = (learner(), learner());
    assert!(on_lists.takes_sparse());
    for step in 0..2 {
        let batch: Vec<usize> = (0..128)
            .map(|j| (j * 7 + step * 3) % data.train.len())
            .collect();
        let idx: Vec<i64> = batch.iter().map(|&i| i as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [batch.len()]), &device);
        let y = tensors.one_hot.clone().select(0, idx.clone()).transpose();
        let x = tensors.images_at(idx).transpose();
        on_images = on_images.step(x, y.clone(), 0.1).0;
        on_lists = on_lists.step_sparse(listed.batch(&batch), y, 0.1).0;
    }
    let (a, b) = (on_images.model(), on_lists.model());
    assert_eq!(values(a.W1.val()), values(b.W1.val()), "W1");
    assert_eq!(values(a.b1.val()), values(b.b1.val()), "b1");
    assert_eq!(values(a.W2.val()), values(b.W2.val()), "W2");
    assert_eq!(values(a.b2.val()), values(b.b2.val()), "b2");
    // Dense products and autodiff take images, never lists.
    let dense = Learner::Manual(TwoLayerNet::new(128, Init::He, 4, &device), Products::Dense);
    assert!(!dense.takes_sparse());
}
