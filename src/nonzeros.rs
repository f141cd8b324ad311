//! The nonzero pixels of every image of a split, listed once before training, so that a
//! step's [`SparseX`] is put together from its images' lists.
//!
//! [`SparseX::from_images`] finds a batch's nonzeros by reading all 784 pixels of each
//! image, after the batch's images have been gathered into one tensor: at hidden 384,
//! batch 128, the gathering and the reading took 0.27 ms of a 1.24 ms step (2-core
//! Xeon). An image's nonzeros do not change from one epoch to the next, so they are
//! listed here once (about 3 bytes a nonzero: 25 MB for MNIST's 55,000 training images,
//! against 172 MB for the images themselves as floats), and a step copies its images'
//! lists one after the other. The values are [`pixel_value`] of the stored bytes, the
//! same function the image tensors are made with, so the [`SparseX`] is the one
//! [`SparseX::from_images`] makes from the gathered batch.
//!
//! ```
//! use mnist_nn::nonzeros::SplitNonzeros;
//!
//! // Two images: one with pixels 3 and 700 inked, one blank.
//! let mut pixels = vec![0u8; 2 * 784];
//! pixels[3] = 255;
//! pixels[700] = 51;
//! let listed = SplitNonzeros::of(&pixels);
//! assert_eq!(listed.len(), 2);
//! // A batch of image 1, then image 0.
//! let x = listed.batch(&[1, 0]);
//! assert_eq!((x.images(), x.nonzeros()), (2, 2));
//! ```

use rayon::prelude::*;

use crate::IMAGE_PIXELS;
use crate::data::pixel_value;
use crate::prefetch::prefetch;
use crate::sparse::{MAX_IMAGES, SparseX};

/// Images listed per task on Rayon's pool when a split is listed.
const IMAGES_PER_TASK: usize = 1024;

/// The nonzero pixels of every image of a split, image by image.
#[derive(Debug, Clone)]
pub struct SplitNonzeros {
    /// Image `i`'s nonzeros are entries `start[i]..start[i + 1]`.
    start: Vec<usize>,
    /// The pixel (`0..784`) of each entry.
    pixel: Vec<u16>,
    /// The stored byte (`1..=255`) of each entry.
    byte: Vec<u8>,
    /// [`pixel_value`] of each byte.
    value: [f32; 256],
}

impl SplitNonzeros {
    /// The nonzeros of the images in `pixels` (784 bytes each, one image after the other,
    /// as [`crate::data::MnistSplit::pixels`]).
    ///
    /// # Panics
    ///
    /// When `pixels.len()` is not a multiple of 784.
    pub fn of(pixels: &[u8]) -> Self {
        assert!(
            pixels.len().is_multiple_of(IMAGE_PIXELS),
            "pixels must be whole images of 784"
        );
        let parts: Vec<(Vec<usize>, Vec<u16>, Vec<u8>)> = pixels
            .par_chunks(IMAGES_PER_TASK * IMAGE_PIXELS)
            .map(list_images)
            .collect();
        let total: usize = parts.iter().map(|(_, p, _)| p.len()).sum();
        let mut start = Vec::with_capacity(pixels.len() / IMAGE_PIXELS + 1);
        start.push(0);
        let (mut pixel, mut byte) = (Vec::with_capacity(total), Vec::with_capacity(total));
        for (ends, part_pixels, part_bytes) in parts {
            let offset = pixel.len();
            start.extend(ends.iter().map(|end| end + offset));
            pixel.extend_from_slice(&part_pixels);
            byte.extend_from_slice(&part_bytes);
        }
        Self {
            start,
            pixel,
            byte,
            value: std::array::from_fn(|b| pixel_value(b as u8)),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.start.len() - 1
    }

    /// Whether the split has no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Nonzeros of the images `images` (indices into the split), in that order.
    pub fn count(&self, images: &[usize]) -> usize {
        images
            .iter()
            .map(|&i| self.start[i + 1] - self.start[i])
            .sum()
    }

    /// `X` `(784, m)` of the images `images` (indices into the split), column `j` image
    /// `images[j]`: what [`SparseX::from_images`] gives for those images gathered.
    ///
    /// # Panics
    ///
    /// When an index is out of the split, or there are more than [`MAX_IMAGES`].
    pub fn batch(&self, images: &[usize]) -> SparseX {
        assert!(
            images.len() <= MAX_IMAGES,
            "too many images for one sparse X"
        );
        let mut image_start = Vec::with_capacity(images.len() + 1);
        image_start.push(0u32);
        let mut by_image = Vec::with_capacity(self.count(images));
        for (j, &i) in images.iter().enumerate() {
            if let Some(&ahead) = images.get(j + PREFETCH_AHEAD) {
                self.prefetch_lists(ahead);
            }
            let entries = self.start[i]..self.start[i + 1];
            let pixels = &self.pixel[entries.clone()];
            let bytes = &self.byte[entries];
            by_image.extend(
                pixels
                    .iter()
                    .zip(bytes)
                    .map(|(&k, &b)| (u32::from(k), self.value[usize::from(b)])),
            );
            image_start.push(by_image.len() as u32);
        }
        SparseX::from_by_image(image_start, by_image)
    }

    /// Asks the CPU to bring image `i`'s lists into its caches (a hint, no effect on
    /// the results; nothing on CPUs other than x86-64).
    fn prefetch_lists(&self, i: usize) {
        let entries = self.start[i]..self.start[i + 1];
        prefetch(&self.pixel[entries.clone()]);
        prefetch(&self.byte[entries]);
    }
}

/// How many images ahead [`SplitNonzeros::batch`] asks for an image's lists: a
/// shuffled batch's images lie anywhere in the 25 MB of lists, and waiting for each
/// image's first cache lines from memory took most of the batch's listing.
const PREFETCH_AHEAD: usize = 8;

/// The nonzeros of whole images of 784 bytes: where each image's list ends (counted
/// from the first image's start), and the entries' pixels and bytes.
fn list_images(pixels: &[u8]) -> (Vec<usize>, Vec<u16>, Vec<u8>) {
    let mut ends = Vec::with_capacity(pixels.len() / IMAGE_PIXELS);
    let (mut pixel, mut byte) = (Vec::new(), Vec::new());
    for image in pixels.chunks_exact(IMAGE_PIXELS) {
        for (k, &b) in image.iter().enumerate() {
            if b != 0 {
                pixel.push(k as u16);
                byte.push(b);
            }
        }
        ends.push(pixel.len());
    }
    (ends, pixel, byte)
}
