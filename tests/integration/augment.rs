//! Data augmentation: the same seed gives the same images, zero strength is the
//! identity, a shift moves the centre of mass by the shift, the elastic field has the
//! spread its formula gives and keeps pixels in [0, 1], a run with augmentation stopped
//! and resumed equals an uninterrupted one, each step gets the images of its own labels,
//! and bad settings name their key.

use std::path::Path;

use mnist_nn::IMAGE_PIXELS;
use mnist_nn::augment::{
    Augment, Augmenter, Distortion, FieldBasis, autocorrelation, gaussian_kernel, image_rng,
};
use mnist_nn::backend::BackendKind;
use mnist_nn::config::Config;
use mnist_nn::data::pixel_value;
use mnist_nn::model::TwoLayerNet;
use mnist_nn::train::{EpochRecord, train, train_from};

use crate::util::{StopAt, mnist, small_mnist};

/// Every kind of distortion at once, at the strengths of a real run.
fn everything() -> Augment {
    Augment {
        shift: 2.0,
        rotation: 10.0,
        scale: 0.1,
        shear: 0.2,
        elastic_alpha: 34.0,
        elastic_sigma: 4.0,
    }
}

fn pixels() -> &'static [u8] {
    &mnist().train.pixels
}

#[test]
fn the_same_seed_epoch_and_index_give_the_same_image_and_others_do_not() {
    let aug = Augmenter::new(everything());
    let image = |seed, epoch, index| aug.epoch(seed, epoch).image(pixels(), index);
    let a = image(7, 3, 12);
    assert_eq!(a, image(7, 3, 12), "drawn twice");
    for (seed, epoch, index) in [(8, 3, 12), (7, 4, 12), (7, 3, 13)] {
        assert_ne!(
            a,
            image(seed, epoch, index),
            "seed {seed}, epoch {epoch}, index {index}"
        );
    }
    // The vector variant this CPU runs (AVX-512 or AVX2) makes exactly the image that
    // the same steps make for any CPU: the draw, then the distortion applied.
    let epoch = aug.epoch(7, 3);
    for index in [0, 12, 5, 40_000] {
        let portable = epoch.apply(
            &pixels()[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS],
            &epoch.draw(index),
        );
        assert_eq!(epoch.image(pixels(), index), portable, "image {index}");
    }
    // A batch made in parallel holds exactly the images made one by one.
    let indices = [12, 5, 40_000, 12];
    let mut batch = vec![0.0; indices.len() * IMAGE_PIXELS];
    epoch.batch(pixels(), &indices, &mut batch);
    for (made, &i) in batch.chunks(IMAGE_PIXELS).zip(&indices) {
        assert_eq!(made, epoch.image(pixels(), i), "image {i} in a batch");
    }
}

#[test]
fn zero_strength_is_the_identity() {
    // Settings all 0 draw the identity map: every output pixel reads a whole source
    // pixel, so the image comes back bit for bit as pixel / 255.
    let aug = Augmenter::new(Augment::default());
    for index in [0, 1, 999] {
        let want: Vec<f32> = pixels()[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
            .iter()
            .map(|&b| pixel_value(b))
            .collect();
        assert_eq!(
            aug.epoch(1, 1).image(pixels(), index).to_vec(),
            want,
            "image {index}"
        );
    }
}

/// (x, y) centre of mass of an image's ink.
fn centre_of_mass(image: &[f32]) -> [f64; 2] {
    let (mut sx, mut sy, mut total) = (0.0, 0.0, 0.0);
    for (i, &v) in image.iter().enumerate() {
        let v = f64::from(v);
        sx += v * (i % 28) as f64;
        sy += v * (i / 28) as f64;
        total += v;
    }
    [sx / total, sy / total]
}

#[test]
fn a_shift_moves_the_centre_of_mass_by_the_shift() {
    // MNIST digits sit in a 20×20 box centred in 28×28, so shifts of up to 3 pixels
    // keep all ink inside. Bilinear interpolation with weights summing to 1 moves
    // every pixel's mass by exactly the shift, fractional shifts included; what is
    // left is f32 rounding of sums of ~150 values (1e-4 of a pixel is far above it
    // and far below any wrong sign or axis).
    let aug = Augmenter::new(Augment::default());
    let image = &pixels()[..IMAGE_PIXELS];
    let before = centre_of_mass(&aug.apply(image, &Distortion::default()));
    for shift in [[2.0, -3.0], [0.25, 1.5], [-2.75, 0.0]] {
        let d = Distortion {
            shift,
            ..Default::default()
        };
        let after = centre_of_mass(&aug.apply(image, &d));
        for axis in 0..2 {
            let moved = after[axis] - before[axis];
            assert!(
                (moved - f64::from(shift[axis])).abs() < 1e-4,
                "shift {shift:?}: the centre moved {moved} along axis {axis}"
            );
        }
    }
}

#[test]
fn elastic_fields_have_the_spread_of_their_formula_and_images_stay_in_range() {
    // Each displacement is α·Σ w·u over the (2r+1)² kernel weights w with independent
    // u ~ uniform(−1, 1) of variance ⅓: its standard deviation is α·‖w‖₂/√3, and its
    // mean absolute value that times √(2/π) (a sum of hundreds of uniforms is normal).
    // The field is drawn through `FieldBasis` with that covariance, less 10⁻⁵ of it.
    let (alpha, sigma) = (34.0f32, 4.0f32);
    let kernel = gaussian_kernel(sigma);
    // The 2-D kernel is g(i)·g(j), so ‖w‖₂² = (Σ g²)², and ‖w‖₂ = Σ g².
    let norm: f64 = kernel.iter().map(|&g| f64::from(g).powi(2)).sum::<f64>();
    let want_sd = f64::from(alpha) * norm / 3f64.sqrt();
    let aug = Augmenter::new(Augment {
        elastic_alpha: f64::from(alpha),
        elastic_sigma: f64::from(sigma),
        ..Augment::default()
    });
    let (mut sum_sq, mut sum_abs, mut count) = (0.0f64, 0.0f64, 0usize);
    let fields = 400;
    let epoch = aug.epoch(5, 1);
    for index in 0..fields {
        let field = epoch.draw(index).elastic.expect("α > 0 draws a field");
        for &d in field.dx.iter().chain(&field.dy) {
            sum_sq += f64::from(d).powi(2);
            sum_abs += f64::from(d).abs();
            count += 1;
        }
    }
    let sd = (sum_sq / count as f64).sqrt();
    let mean_abs = sum_abs / count as f64;
    // The field is correlated over about σ pixels, so 400 fields of 28×28 hold roughly
    // 400·2·28²/(4πσ²) ≈ 3,100 independent values: the sample's spread is within ~2.5%
    // of the truth (1/√(2·3100)), and 10% is four times that.
    assert!(
        (sd / want_sd - 1.0).abs() < 0.10,
        "standard deviation {sd:.3} px, formula {want_sd:.3} px"
    );
    let want_abs = want_sd * (2.0 / std::f64::consts::PI).sqrt();
    assert!(
        (mean_abs / want_abs - 1.0).abs() < 0.10,
        "mean displacement {mean_abs:.3} px, formula {want_abs:.3} px"
    );
    assert!(
        mean_abs > 0.5,
        "Simard's σ = 4, α = 34 moves pixels by about a pixel"
    );

    // Distorted images stay in [0, 1] and keep their ink within reason: zooms of up
    // to 1.1 per axis and the elastic field stretch or squeeze thin strokes (a '1' can
    // nearly double its ink), so the bounds only catch a blank or a smeared image.
    let strong = Augmenter::new(everything());
    let strong = strong.epoch(5, 1);
    for index in 0..200 {
        let out = strong.image(pixels(), index);
        let (lo, hi) = out
            .iter()
            .fold((1.0f32, 0.0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(
            lo >= 0.0 && hi <= 1.0,
            "image {index}: values in [{lo}, {hi}]"
        );
        let ink_in: f32 = pixels()[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS]
            .iter()
            .map(|&b| pixel_value(b))
            .sum();
        let ink_out: f32 = out.iter().sum();
        assert!(
            ink_out > 0.4 * ink_in && ink_out < 2.5 * ink_in,
            "image {index}: ink {ink_in} became {ink_out}"
        );
    }
}

#[test]
fn elastic_fields_are_correlated_as_smoothed_noise_is() {
    // Smoothed noise has the covariance (α²/3)·C(dx)·C(dy), C(d) the 1-D kernel's
    // autocorrelation at lag d, so two displacements d pixels apart along a row or a
    // column have the correlation C(d)/C(0): for the Gaussian of σ = 4, about
    // exp(−d²/4σ²), 0.94, 0.78 and 0.37 at d = 2, 4, 8. A field drawn through too few
    // or wrongly oriented eigenvectors is correlated otherwise (one eigenvector: near 1
    // at every lag; rows for columns: not the same at every place).
    let sigma = 4.0f32;
    let kernel = gaussian_kernel(sigma);
    let lag = |d: usize| autocorrelation(&kernel, d);
    // The kernel's own autocorrelation is the Gaussian's, exp(−d²/4σ²), to within the
    // 3σ cut (which moves it by about 10⁻³).
    for d in [2usize, 4, 8] {
        let gaussian = (-((d * d) as f64) / (4.0 * f64::from(sigma).powi(2))).exp();
        assert!(
            (lag(d) / lag(0) - gaussian).abs() < 5e-3,
            "lag {d}: {} against the Gaussian's {gaussian}",
            lag(d) / lag(0)
        );
    }
    let aug = Augmenter::new(Augment {
        elastic_alpha: 34.0,
        elastic_sigma: f64::from(sigma),
        ..Augment::default()
    });
    let epoch = aug.epoch(9, 2);
    let fields: Vec<Vec<f32>> = (0..1000)
        .flat_map(|index| {
            let field = epoch.draw(index).elastic.expect("α > 0 draws a field");
            [field.dx, field.dy]
        })
        .collect();
    for d in [2usize, 4, 8] {
        for (along, step) in [("a row", 1usize), ("a column", 28)] {
            let (mut sab, mut saa, mut sbb) = (0.0f64, 0.0f64, 0.0f64);
            for f in &fields {
                for y in 0..28 - if step == 28 { d } else { 0 } {
                    for x in 0..28 - if step == 1 { d } else { 0 } {
                        let a = f64::from(f[y * 28 + x]);
                        let b = f64::from(f[y * 28 + x + d * step]);
                        sab += a * b;
                        saa += a * a;
                        sbb += b * b;
                    }
                }
            }
            let measured = sab / (saa * sbb).sqrt();
            let want = lag(d) / lag(0);
            // ~7,800 independent values (1,000 fields of two components, each of about
            // 28²/(4πσ²) ≈ 3.9): the standard error of a correlation ρ is about
            // (1 − ρ²)/√7800, at most 0.011; 0.05 is over four of them.
            assert!(
                (measured - want).abs() < 0.05,
                "lag {d} along {along}: correlation {measured:.3}, smoothed noise's {want:.3}"
            );
        }
    }
    // The basis keeps what the doc says: 10 of the 28 eigenvectors at σ = 4, all of
    // them for a kernel of a pixel or two.
    assert_eq!(FieldBasis::new(4.0).rank(), 10);
    assert_eq!(FieldBasis::new(0.5).rank(), 28);
}

#[test]
fn the_image_generator_is_fixed() {
    // The images of a run must not change with a dependency or a refactor: the first
    // draws of SplitMix64 from seed 0 are published values (Vigna's reference
    // implementation), and the per-image seeding is pinned by its first output.
    let mut rng = mnist_nn::augment::ImageRng::new(0);
    assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
    assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    // The noise fill's draws are those same outputs, 16 bits at a time from the lowest,
    // each mapped to (level · 2⁻¹⁵ − 1); the generator then stands past the last draw.
    let mut rng = mnist_nn::augment::ImageRng::new(0);
    let mut noise = [0.0f32; 7];
    rng.fill_symmetric(&mut noise);
    let levels = |bits: u64| -> Vec<f32> {
        (0..4)
            .map(|i| ((bits >> (16 * i)) & 0xFFFF) as f32 * (2.0 / 65536.0) - 1.0)
            .collect()
    };
    let mut want = levels(0xE220_A839_7B1D_CDAF);
    want.extend(&levels(0x6E78_9E6A_A1B9_65F4)[..3]);
    assert_eq!(noise.to_vec(), want, "the noise fill's draws");
    let mut reference = mnist_nn::augment::ImageRng::new(0);
    reference.next_u64();
    reference.next_u64();
    assert_eq!(rng.next_u64(), reference.next_u64(), "after the fill");
    let mut per_image = image_rng(42, 3, 17);
    let first = per_image.next_u64();
    assert_ne!(first, image_rng(42, 3, 18).next_u64());
    assert_ne!(first, image_rng(42, 4, 17).next_u64());
    assert_ne!(first, image_rng(43, 3, 17).next_u64());
}

fn config(extra: &str, epochs: usize) -> Config {
    let text = format!(
        "name = \"a\"\nseed = 3\n[model]\nhidden = 16\n[train]\nepochs = {epochs}\nbatch_size = 100\nlearning_rate = 0.2\n{extra}"
    );
    let c = Config::parse(&text, Path::new("a.toml")).unwrap();
    c.validate(Path::new("a.toml")).unwrap();
    c
}

#[test]
fn an_augmented_scheduled_run_stopped_and_resumed_equals_an_uninterrupted_one() {
    let c = config(
        "[train.schedule]\nkind = \"cosine\"\nwarmup_epochs = 1\n[train.augment]\nshift = 2\nrotation = 10\nelastic_alpha = 34\n",
        3,
    );
    let device = BackendKind::Flex.device().unwrap();
    let data = small_mnist();
    let fresh = || TwoLayerNet::new(16, c.model.init, c.seed, &device);
    let straight = train(&c, fresh(), &data, &device, &mut ()).unwrap();
    let plain = config(
        "[train.schedule]\nkind = \"cosine\"\nwarmup_epochs = 1\n",
        3,
    );
    let unaugmented = train(&plain, fresh(), &data, &device, &mut ()).unwrap();
    assert_ne!(
        straight.model.to_host().unwrap(),
        unaugmented.model.to_host().unwrap(),
        "augmentation changes what the network is shown"
    );
    // Stopped at an epoch's end, and in the middle of an epoch (batch 4 of 10).
    for at_batch in [None, Some(4)] {
        let mut stop = StopAt::new(1, at_batch);
        train(&c, fresh(), &data, &device, &mut stop).unwrap();
        let at = stop.saved.as_ref().map(|s| s.1);
        let state = stop.state(&device);
        let resumed = train_from(&c, state, &data, &device, &mut ()).unwrap();
        assert_eq!(
            resumed.model.to_host().unwrap(),
            straight.model.to_host().unwrap(),
            "parameters after a resume at {at:?}"
        );
        let train_acc = |h: &[EpochRecord]| h.iter().map(|r| r.train.accuracy).collect::<Vec<_>>();
        assert_eq!(train_acc(&resumed.history), train_acc(&straight.history));
    }
}

#[test]
fn bad_augmentation_settings_name_their_key() {
    let cases = [
        ("shift = -1", "train.augment.shift"),
        ("rotation = 400", "train.augment.rotation"),
        ("scale = 1.5", "train.augment.scale"),
        ("elastic_alpha = nan", "train.augment.elastic_alpha"),
        (
            "elastic_alpha = 34\nelastic_sigma = 0",
            "train.augment.elastic_sigma",
        ),
        ("elastic = 34", "elastic"),
    ];
    for (setting, needle) in cases {
        let text = format!(
            "name = \"a\"\n[model]\nhidden = 4\n[train]\nepochs = 3\nbatch_size = 10\nlearning_rate = 0.1\n[train.augment]\n{setting}\n"
        );
        let e = Config::parse(&text, Path::new("a.toml"))
            .and_then(|c| c.validate(Path::new("a.toml")).map(|()| c))
            .err()
            .unwrap_or_else(|| panic!("accepted: {setting}"))
            .to_string();
        assert!(e.contains(needle) && e.contains("a.toml"), "{setting}: {e}");
    }
}

#[test]
fn augmented_batches_arrive_in_order_with_their_labels() {
    // The batches are made by threads that take turns. A shift of a millionth of a
    // pixel moves no pixel value by more than about 1e-6, so such a run must follow the
    // plain run to within rounding, which it does only if each step gets the images of
    // its own labels. Two batches swapped move the parameters by about a step's size
    // (1e-2 and more at rate 0.2), far above the 1e-4 allowed here; the rounding of
    // 1e-6 changes over 20 steps stays below 1e-5.
    let tiny = config("[train.augment]\nshift = 0.000001\n", 2);
    let plain = config("", 2);
    let device = BackendKind::Flex.device().unwrap();
    let data = small_mnist();
    let fresh = || TwoLayerNet::new(16, tiny.model.init, tiny.seed, &device);
    let shifted = train(&tiny, fresh(), &data, &device, &mut ()).unwrap();
    let unshifted = train(&plain, fresh(), &data, &device, &mut ()).unwrap();
    let (a, b) = (
        shifted.model.to_host().unwrap(),
        unshifted.model.to_host().unwrap(),
    );
    let gap =
        a.w1.iter()
            .zip(&b.w1)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
    assert!(gap < 1e-4, "W1 after 20 steps differs by {gap}");
    assert_ne!(a.w1, b.w1, "the augmented run was not augmented");
}
