//! MNIST as the network sees it: the four IDX files read once, split into train /
//! validation / test, exposed as a `burn-dataset` [`Dataset`] and uploaded to the device
//! once as whole tensors that batches are sliced from.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn_dataset::{Dataset, DatasetError};
use burn_dispatch::DispatchDevice;

use super::idx::{self, IdxImages};
use super::pixel_value;
use crate::error::IdxError;
use crate::{IMAGE_PIXELS, NUM_CLASSES};

/// One MNIST image and its label, as `burn-dataset` items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistItem {
    /// 784 pixels, row-major, 0 = background, 255 = ink.
    pub pixels: Vec<u8>,
    /// The digit, 0–9.
    pub label: u8,
}

/// A set of MNIST images with their labels, kept on the host as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MnistSplit {
    /// `len · 784` pixels, one image after the other.
    pub pixels: Vec<u8>,
    /// `len` labels.
    pub labels: Vec<u8>,
}

impl MnistSplit {
    /// Reads an image file and its label file and checks that they agree in count.
    pub fn read(images: &Path, labels: &Path) -> Result<Self, IdxError> {
        let IdxImages { count, pixels, .. } = idx::read_images(images)?;
        let label_values = idx::read_labels(labels)?;
        if label_values.len() != count {
            return Err(IdxError::CountMismatch {
                images: images.to_path_buf(),
                image_count: count,
                labels: labels.to_path_buf(),
                label_count: label_values.len(),
            });
        }
        Ok(Self {
            pixels,
            labels: label_values,
        })
    }

    /// Reads MNIST's test set from `dir`: `t10k-images-idx3-ubyte` and
    /// `t10k-labels-idx1-ubyte`, each raw or gzipped.
    pub fn read_test(dir: &Path) -> Result<Self, IdxError> {
        Self::read(&idx::locate(dir, FILES[2]), &idx::locate(dir, FILES[3]))
    }

    /// Image `index` as network input: 784 values in `[0, 1]` (pixel / 255), or `None`
    /// past the end.
    pub fn image(&self, index: usize) -> Option<[f32; IMAGE_PIXELS]> {
        if index >= self.len() {
            return None;
        }
        let bytes = self
            .pixels
            .get(index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS)?;
        let mut image = [0.0f32; IMAGE_PIXELS];
        for (v, &b) in image.iter_mut().zip(bytes) {
            *v = pixel_value(b);
        }
        Some(image)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The images `range` as a new split.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Self {
        Self {
            pixels: self.pixels[range.start * IMAGE_PIXELS..range.end * IMAGE_PIXELS].to_vec(),
            labels: self.labels[range].to_vec(),
        }
    }

    /// Uploads the split to `device` as whole tensors (see [`MnistTensors`]), in bands
    /// where the device limits the size of a buffer ([`tensor_limit`]).
    pub fn to_device(&self, device: &Device) -> MnistTensors {
        MnistTensors::new(self, device, tensor_limit(device))
    }

    /// Uploads the split as [`MnistTensors`] with no tensor above `max_bytes`, whatever
    /// the device (so that banding can be tested on a CPU).
    pub fn to_device_within(&self, device: &Device, max_bytes: usize) -> MnistTensors {
        MnistTensors::new(self, device, max_bytes)
    }
}

impl Dataset<MnistItem> for MnistSplit {
    fn get(&self, index: usize) -> Result<MnistItem, DatasetError> {
        let label = *self.labels.get(index).ok_or_else(|| {
            DatasetError::new(std::io::Error::other(format!(
                "index {index} is past the last of {} images",
                self.len()
            )))
        })?;
        let pixels = self
            .pixels
            .get(index * IMAGE_PIXELS..(index + 1) * IMAGE_PIXELS)
            .ok_or_else(|| {
                DatasetError::new(std::io::Error::other(format!(
                    "image {index} is missing: the split holds {} pixels for {} labels",
                    self.pixels.len(),
                    self.len()
                )))
            })?
            .to_vec();
        Ok(MnistItem { pixels, label })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// The MNIST database split for training: the train file's first images train the
/// network, its last `validation` images are held out, and the test file tests.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// Images the network learns from.
    pub train: MnistSplit,
    /// Held-out images of the train file (may be empty).
    pub valid: MnistSplit,
    /// The 10,000 test images.
    pub test: MnistSplit,
}

/// The names of the four MNIST files (each may also be gzipped, with `.gz`).
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

impl Mnist {
    /// Reads the four files from `dir`; holds out the last `validation` training images
    /// and keeps the first `limit` of the rest (all when `None`).
    pub fn load(dir: &Path, validation: usize, limit: Option<usize>) -> Result<Self, LoadError> {
        let [tri, trl, tei, tel] = FILES.map(|name| idx::locate(dir, name));
        let full = MnistSplit::read(&tri, &trl)?;
        let test = MnistSplit::read(&tei, &tel)?;
        if validation >= full.len() {
            return Err(LoadError::Validation {
                validation,
                available: full.len(),
                path: tri,
            });
        }
        let split = full.len() - validation;
        let keep = limit.map_or(split, |l| l.min(split));
        Ok(Self {
            train: full.slice(0..keep),
            valid: full.slice(split..full.len()),
            test,
        })
    }
}

/// Why [`Mnist::load`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A bad file.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// More validation images asked for than the train file holds.
    #[error("is {validation}, which leaves no training images: {path} holds {available}")]
    Validation {
        /// Requested hold-out.
        validation: usize,
        /// Images in the train file.
        available: usize,
        /// The train image file.
        path: PathBuf,
    },
}

/// The largest tensor, in bytes, that this program puts on a GPU: 128 MiB, WebGPU's
/// default `maxStorageBufferBindingSize`, which is also the storage-buffer limit of
/// Mesa's lavapipe. The 55,000 training images as `f32` take 172 MB, so on a GPU they
/// are stored in pixel bands below this size (see [`MnistTensors`]).
pub const MAX_TENSOR_BYTES: usize = 128 << 20;

/// A split on the device, ready for batching: one row per image.
///
/// The design notes' `X` (784 × m, one column per image) of a batch is
/// `images(idx).transpose()`: rows are stored contiguously so that gathering a shuffled
/// batch copies whole images, and the transpose is a free stride swap. When the `(n, 784)`
/// pixels would exceed the device's [`tensor_limit`] they are kept as side-by-side column bands
/// (pixels `0..k`, `k..2k`, …), each gathered with the same indices and joined per batch.
#[derive(Debug, Clone)]
pub struct MnistTensors {
    /// `(n, width)` bands of the pixels scaled to `[0, 1]`; together `(n, 784)`.
    bands: Vec<Tensor<2>>,
    /// `(n, 10)` one-hot labels (`Y` transposed).
    pub one_hot: Tensor<2>,
    /// `(n)` labels.
    pub labels: Tensor<1, Int>,
}

/// The largest tensor this program puts on `device`: [`MAX_TENSOR_BYTES`] on a GPU,
/// unlimited on the CPU backends (whose tensors are plain host memory), so that a CPU
/// batch is a view of one tensor rather than bands joined by a copy.
pub fn tensor_limit(device: &Device) -> usize {
    match device.as_dispatch() {
        DispatchDevice::NdArray(_) | DispatchDevice::Flex(_) => usize::MAX,
        _ => MAX_TENSOR_BYTES,
    }
}

/// Pixels per band so that `n` rows of `f32` stay within `max_bytes`.
fn band_width(n: usize, max_bytes: usize) -> usize {
    let row_bytes = n.max(1) * std::mem::size_of::<f32>();
    (max_bytes / row_bytes).clamp(1, IMAGE_PIXELS)
}

impl MnistTensors {
    fn new(split: &MnistSplit, device: &Device, max_bytes: usize) -> Self {
        let n = split.len();
        let width = band_width(n, max_bytes);
        let bands = (0..IMAGE_PIXELS)
            .step_by(width)
            .map(|first| {
                let cols = first..(first + width).min(IMAGE_PIXELS);
                let band: Vec<f32> = split
                    .pixels
                    .chunks_exact(IMAGE_PIXELS)
                    .flat_map(|image| image[cols.clone()].iter().map(|&p| pixel_value(p)))
                    .collect();
                Tensor::from_data(TensorData::new(band, [n, cols.len()]), device)
            })
            .collect();
        let mut one_hot = vec![0.0f32; n * NUM_CLASSES];
        for (row, &label) in split.labels.iter().enumerate() {
            one_hot[row * NUM_CLASSES + usize::from(label)] = 1.0;
        }
        let labels: Vec<i64> = split.labels.iter().map(|&l| i64::from(l)).collect();
        Self {
            bands,
            one_hot: Tensor::from_data(TensorData::new(one_hot, [n, NUM_CLASSES]), device),
            labels: Tensor::from_data(TensorData::new(labels, [n]), device),
        }
    }

    /// `(m, 784)` pixels of the images at `idx` (indices into the split, on the device).
    pub fn images_at(&self, idx: Tensor<1, Int>) -> Tensor<2> {
        self.join(|band| band.select(0, idx.clone()))
    }

    /// The labels and one-hot labels in the order `order` (a permutation of `0..len`,
    /// on the device): row `i` of each is row `order[i]` of `self`'s. The images stay
    /// where they are (a second copy of them would double the memory); gather them with
    /// [`MnistTensors::images_at`] and the same order.
    pub fn permuted_labels(&self, order: Tensor<1, Int>) -> (Tensor<2>, Tensor<1, Int>) {
        (
            self.one_hot.clone().select(0, order.clone()),
            self.labels.clone().select(0, order),
        )
    }

    /// `(m, 784)` pixels of the images in `range`.
    pub fn images_in(&self, range: std::ops::Range<usize>) -> Tensor<2> {
        self.join(|band| band.slice(range.clone()))
    }

    /// `part` of every band, side by side.
    fn join(&self, part: impl Fn(Tensor<2>) -> Tensor<2>) -> Tensor<2> {
        match self.bands.as_slice() {
            [whole] => part(whole.clone()),
            bands => Tensor::cat(bands.iter().cloned().map(part).collect(), 1),
        }
    }

    /// Number of pixel bands the images are stored in (1 unless they exceed the
    /// device's [`tensor_limit`]).
    pub fn bands(&self) -> usize {
        self.bands.len()
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.dims()[0]
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
