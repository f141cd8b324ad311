//! Data augmentation of the training images, on the fly: a random affine map (shift,
//! rotation, scale, shear) and Simard's elastic distortion, composed into one
//! displacement of every pixel and applied by one bilinear resampling.
//!
//! For an output pixel `p` (column, row) with the image centre `c = (13.5, 13.5)`, the
//! value is read from the source image at
//!
//! ```text
//! s(p) = A·(p − c) + c − t + α·(G_σ ∗ U)(p)
//! A    = R(θ) · [[1, k], [0, 1]] · diag(1/z_x, 1/z_y)
//! ```
//!
//! with `t` the shift (so the digit moves by `+t`), `θ` the rotation, `k` the shear,
//! `z` the zoom, and `U` a field of independent uniform draws in `(−1, 1)` for x and
//! y, smoothed by a Gaussian of standard deviation `σ` and scaled by `α` (Simard,
//! Steinkraus & Platt, ICDAR 2003); the field is drawn from that law through the
//! leading eigenvectors of its covariance ([`FieldBasis`]) rather than by smoothing
//! noise. Reads outside the image are background (0).
//!
//! Every image's distortion is drawn from its own generator, seeded by the run's seed,
//! the epoch and the image's index in the training split ([`image_rng`]). So the same
//! seed gives the same images, a resumed run sees exactly the images an uninterrupted
//! one would, and the images of a batch can be made in parallel in any order.
//!
//! ```
//! use mnist_nn::augment::{Augment, Augmenter};
//! use mnist_nn::IMAGE_PIXELS;
//! // A one-pixel dot at column 10, row 12, shifted by exactly (+2, −3).
//! let mut dot = vec![0u8; IMAGE_PIXELS];
//! dot[12 * 28 + 10] = 255;
//! let shift = mnist_nn::augment::Distortion { shift: [2.0, -3.0], ..Default::default() };
//! let out = Augmenter::new(Augment::default()).apply(&dot, &shift);
//! assert_eq!(out[9 * 28 + 12], 1.0);
//! assert_eq!(out.iter().sum::<f32>(), 1.0);
//! ```

mod affine;
mod elastic;
mod jacobi;
mod resample;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use affine::Affine;
pub use elastic::{DisplacementField, FieldBasis, autocorrelation, gaussian_kernel};
pub use resample::{SourceGrid, bilinear};

use crate::prefetch::prefetch;
use crate::{IMAGE_PIXELS, IMAGE_SIDE};

/// How strongly the training images are distorted (the config's `[train.augment]`);
/// every strength 0 (the default) means no augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Largest shift in pixels, drawn uniformly in `[−shift, shift]` for x and y.
    #[serde(default)]
    pub shift: f64,
    /// Largest rotation in degrees, drawn uniformly in `[−rotation, rotation]`.
    #[serde(default)]
    pub rotation: f64,
    /// Largest relative change of size: each axis is zoomed by a factor drawn
    /// uniformly in `[1 − scale, 1 + scale]`.
    #[serde(default)]
    pub scale: f64,
    /// Largest horizontal shear (the tangent of the slant), drawn in `[−shear, shear]`.
    #[serde(default)]
    pub shear: f64,
    /// Simard's `α`: the scale of the smoothed displacement field, in pixels (0: no
    /// elastic distortion; 34 in the paper).
    #[serde(default)]
    pub elastic_alpha: f64,
    /// Simard's `σ`: the standard deviation, in pixels, of the Gaussian that smooths
    /// the field (4 in the paper).
    #[serde(default = "default_sigma")]
    pub elastic_sigma: f64,
}

fn default_sigma() -> f64 {
    4.0
}

impl Default for Augment {
    /// No distortion (σ at the paper's 4, unused while `elastic_alpha` is 0).
    fn default() -> Self {
        Self {
            shift: 0.0,
            rotation: 0.0,
            scale: 0.0,
            shear: 0.0,
            elastic_alpha: 0.0,
            elastic_sigma: default_sigma(),
        }
    }
}

impl Augment {
    /// True when no image is changed (every strength is 0).
    pub fn is_off(&self) -> bool {
        self.shift == 0.0
            && self.rotation == 0.0
            && self.scale == 0.0
            && self.shear == 0.0
            && self.elastic_alpha == 0.0
    }

    /// What is wrong with these settings, if anything: the key (under
    /// `train.augment`) and the problem.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let checks = [
            ("shift", self.shift, (IMAGE_SIDE / 2) as f64),
            ("rotation", self.rotation, 180.0),
            ("scale", self.scale, 0.9),
            ("shear", self.shear, 1.0),
            ("elastic_alpha", self.elastic_alpha, 100.0),
        ];
        for (key, value, most) in checks {
            if !(value.is_finite() && (0.0..=most).contains(&value)) {
                return Some((key, format!("is {value}; it must be in [0, {most}]")));
            }
        }
        let sigma = self.elastic_sigma;
        if !(sigma.is_finite() && (0.5..=10.0).contains(&sigma)) {
            return Some((
                "elastic_sigma",
                format!("is {sigma}; it must be in [0.5, 10] pixels"),
            ));
        }
        None
    }
}

/// One image's drawn distortion: the parameters of [`Affine`] and the elastic field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Distortion {
    /// Shift `t` in pixels, (x, y): the content moves by `+t`.
    pub shift: [f32; 2],
    /// Rotation `θ` in radians.
    pub rotation: f32,
    /// Zoom factors `z` for x and y (0 is read as 1).
    pub zoom: [f32; 2],
    /// Shear `k`.
    pub shear: f32,
    /// The elastic displacement of every pixel, or none.
    pub elastic: Option<DisplacementField>,
}

/// Makes distorted images as an [`Augment`] says: holds the settings and the basis the
/// elastic fields are drawn through, computed once.
#[derive(Debug, Clone)]
pub struct Augmenter {
    settings: Augment,
    /// `Some` where `elastic_alpha` is above 0.
    basis: Option<FieldBasis>,
}

impl Augmenter {
    /// An augmenter for `settings`.
    pub fn new(settings: Augment) -> Self {
        let basis =
            (settings.elastic_alpha > 0.0).then(|| FieldBasis::new(settings.elastic_sigma as f32));
        Self { settings, basis }
    }

    /// The distortions of `epoch` in a run seeded with `seed`.
    pub fn epoch(&self, seed: u64, epoch: usize) -> EpochAugmenter<'_> {
        EpochAugmenter {
            augmenter: self,
            seed,
            epoch,
        }
    }

    /// `image` (784 bytes, row-major) distorted by `d`, as network input in `[0, 1]`.
    #[inline(always)]
    pub fn apply(&self, image: &[u8], d: &Distortion) -> [f32; IMAGE_PIXELS] {
        let mut source = d.affine().source_grid();
        if let Some(field) = &d.elastic {
            field.add_to(&mut source);
        }
        bilinear(image, &source)
    }

    /// A distortion drawn from `rng`, an image's generator: the affine part's draws
    /// first, in a fixed order, then the elastic field's noise.
    #[inline(always)]
    fn draw_with(&self, rng: &mut ImageRng) -> Distortion {
        let s = &self.settings;
        let mut uniform = |most: f64| most as f32 * rng.symmetric();
        let shift = [uniform(s.shift), uniform(s.shift)];
        let rotation = uniform(s.rotation).to_radians();
        let zoom = [1.0 + uniform(s.scale), 1.0 + uniform(s.scale)];
        let shear = uniform(s.shear);
        let elastic = self
            .basis
            .as_ref()
            .map(|basis| DisplacementField::draw(rng, s.elastic_alpha as f32, basis));
        Distortion {
            shift,
            rotation,
            zoom,
            shear,
            elastic,
        }
    }
}

impl Distortion {
    /// The affine map of this distortion's shift, rotation, zoom and shear.
    pub fn affine(&self) -> Affine {
        Affine::new(self.shift, self.rotation, self.zoom, self.shear)
    }
}

/// An [`Augmenter`] for one epoch of a run: the run's seed and the epoch.
#[derive(Debug, Clone)]
pub struct EpochAugmenter<'a> {
    augmenter: &'a Augmenter,
    seed: u64,
    epoch: usize,
}

impl EpochAugmenter<'_> {
    /// Draws the distortion of training image `index`: the same run seed, epoch and
    /// index always give the same distortion.
    #[inline(always)]
    pub fn draw(&self, index: usize) -> Distortion {
        self.augmenter
            .draw_with(&mut image_rng(self.seed, self.epoch, index))
    }

    /// `image` distorted by `d` ([`Augmenter::apply`]).
    #[inline(always)]
    pub fn apply(&self, image: &[u8], d: &Distortion) -> [f32; IMAGE_PIXELS] {
        self.augmenter.apply(image, d)
    }

    /// Training image `index` of `pixels` (the split's bytes) as distorted in this
    /// epoch: [`EpochAugmenter::apply`] of [`EpochAugmenter::draw`].
    pub fn image(&self, pixels: &[u8], index: usize) -> [f32; IMAGE_PIXELS] {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            // SAFETY: the CPU has AVX-512F and DQ, checked just above.
            return unsafe { self.image_avx512(pixels, index) };
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { self.image_avx2(pixels, index) };
        }
        self.image_portable(pixels, index)
    }

    /// [`EpochAugmenter::image`] compiled for AVX2, so that the field's smoothing and
    /// the resampling run on 8 lanes (the binary is built for x86-64's SSE2 baseline).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn image_avx2(&self, pixels: &[u8], index: usize) -> [f32; IMAGE_PIXELS] {
        self.image_portable(pixels, index)
    }

    /// [`EpochAugmenter::image`] compiled for AVX-512F and DQ: a row of 28 values is
    /// two 16-lane vectors rather than four 8-lane ones, and the noise generator's
    /// 64-bit multiplies run eight to an instruction.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx2")]
    fn image_avx512(&self, pixels: &[u8], index: usize) -> [f32; IMAGE_PIXELS] {
        self.image_portable(pixels, index)
    }

    /// [`EpochAugmenter::image`] for any CPU; inlined into the vector versions.
    #[inline(always)]
    fn image_portable(&self, pixels: &[u8], index: usize) -> [f32; IMAGE_PIXELS] {
        let image = &pixels[index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS];
        // The image's bytes lie anywhere in the split (the order is shuffled): asked
        // for now, they arrive while the distortion is drawn. Their first read was a
        // tenth of the making's samples on a 2-core Zen 5.
        prefetch(image);
        self.augmenter.apply(image, &self.draw(index))
    }

    /// The images `indices` of `pixels`, distorted as in this epoch, one after the
    /// other in `out` (`indices.len() · 784` values), made in parallel.
    ///
    /// # Panics
    /// If `out` does not hold `indices.len() · 784` values or an index is past the
    /// end of `pixels`.
    pub fn batch(&self, pixels: &[u8], indices: &[usize], out: &mut [f32]) {
        assert_eq!(out.len(), indices.len() * IMAGE_PIXELS, "output size");
        out.par_chunks_mut(IMAGE_PIXELS)
            .zip(indices.par_iter())
            .with_min_len(8)
            .for_each(|(dst, &index)| dst.copy_from_slice(&self.image(pixels, index)));
    }
}

/// The generator of one image's distortion: SplitMix64 (Steele, Lea & Flood 2014)
/// started from the run's seed, the epoch and the image index, each mixed in in turn.
/// It is fast (one multiply-xor chain per 64 bits) and fixed here, so the images do
/// not change when a dependency does.
pub fn image_rng(seed: u64, epoch: usize, index: usize) -> ImageRng {
    let mut state = ImageRng(seed).next_u64();
    state = ImageRng(state ^ epoch as u64).next_u64();
    state = ImageRng(state ^ index as u64).next_u64();
    ImageRng(state)
}

/// SplitMix64: see [`image_rng`].
#[derive(Debug, Clone)]
pub struct ImageRng(u64);

impl ImageRng {
    /// A generator whose state starts at `state`.
    pub fn new(state: u64) -> Self {
        Self(state)
    }

    /// The next 64 random bits.
    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix(self.0)
    }

    /// A uniform draw in `[−1, 1)` from the top 24 bits.
    pub fn symmetric(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (2.0 / (1u64 << 24) as f32) - 1.0
    }

    /// Fills `out` with uniform draws in `[−1, 1)` on a grid of 2¹⁶ levels, four per
    /// 64 bits: the noise of an elastic field, where a step of 2⁻¹⁵ is far below
    /// anything a sum of hundreds of them can show.
    #[inline(always)]
    pub fn fill_symmetric(&mut self, out: &mut [f32]) {
        const STEP: f32 = 2.0 / 65536.0;
        // Through i32: one vector conversion, where u64 → f32 takes a dozen.
        let level = |bits: u64, i: u32| ((bits >> (16 * i)) & 0xFFFF) as i32 as f32 * STEP - 1.0;
        // The j-th draw's state is the start plus (j + 1) steps, so the draws are
        // independent of one another and the loop runs on vector lanes.
        let start = self.0;
        let state = |j: usize| start.wrapping_add(GOLDEN_GAMMA.wrapping_mul(j as u64 + 1));
        let draws = out.len() / 4;
        let mut fours = out.chunks_exact_mut(4);
        for (j, four) in (&mut fours).enumerate() {
            let bits = mix(state(j));
            four[0] = level(bits, 0);
            four[1] = level(bits, 1);
            four[2] = level(bits, 2);
            four[3] = level(bits, 3);
        }
        let rest = fours.into_remainder();
        let bits = mix(state(draws));
        for (i, v) in (0..).zip(rest) {
            *v = level(bits, i);
        }
        self.0 = state(draws);
    }
}

/// SplitMix64's step: the golden ratio's 64-bit fraction, odd.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function of a state (Stafford's "Mix13").
#[inline(always)]
fn mix(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
