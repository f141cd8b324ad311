//! The batch the equations are worked on: `m` consecutive MNIST images of one split, as
//! the seed's `X` (784 × m, one column per image, pixel / 255) and `Y` (10 × m, one-hot).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Matrix;
use crate::data::{MnistSplit, pixel_value};
use crate::error::{Error, Result};
use crate::{IMAGE_PIXELS, NUM_CLASSES};

/// Which MNIST split the images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The 10,000 test images.
    #[default]
    Test,
    /// The training images.
    Train,
}

impl Source {
    /// Both splits, in the order error messages list them.
    pub const ALL: [Source; 2] = [Source::Test, Source::Train];

    /// The word the API uses: `test` or `train`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Test => "test",
            Source::Train => "train",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Source {
    type Err = crate::word::UnknownWord;

    /// ```
    /// use mnist_nn::equations::Source;
    /// assert_eq!("train".parse::<Source>(), Ok(Source::Train));
    /// assert!("valid".parse::<Source>().is_err());
    /// ```
    fn from_str(word: &str) -> Result<Self, Self::Err> {
        crate::word::UnknownWord::pick("source", Source::ALL, Source::name, word)
    }
}

/// `m` images of a split, kept as their bytes and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The split they come from.
    pub source: Source,
    /// Their indices in the split (consecutive).
    pub indices: Vec<usize>,
    /// Their labels, 0–9.
    pub labels: Vec<u8>,
    /// `m · 784` pixel bytes, one image after the other (0 = background, 255 = ink).
    pub pixels: Vec<u8>,
}

impl Batch {
    /// Images `start .. start + m` of `split`. An error when `m` is 0, when the range
    /// runs past the split's end, or when a label is not a digit.
    pub fn from_split(split: &MnistSplit, source: Source, start: usize, m: usize) -> Result<Self> {
        let end = start
            .checked_add(m)
            .filter(|&end| m > 0 && end <= split.len());
        let Some(end) = end else {
            return Err(Error::Shape {
                what: "the equations' batch",
                expected: format!(
                    "1 or more images within the {} {source} images",
                    split.len()
                ),
                found: format!("images {start}..{start}+{m}"),
            });
        };
        let labels = split.labels[start..end].to_vec();
        if let Some((i, &label)) = labels
            .iter()
            .enumerate()
            .find(|&(_, &l)| usize::from(l) >= NUM_CLASSES)
        {
            return Err(Error::Label {
                index: start + i,
                label,
            });
        }
        Ok(Self {
            source,
            indices: (start..end).collect(),
            labels,
            pixels: split.pixels[start * IMAGE_PIXELS..end * IMAGE_PIXELS].to_vec(),
        })
    }

    /// Images in the batch: the seed's `m`.
    pub fn m(&self) -> usize {
        self.labels.len()
    }

    /// Pixel `p` (0..784) of the batch's image `k` as its byte.
    pub fn pixel_byte(&self, p: usize, k: usize) -> u8 {
        self.pixels.get(k * IMAGE_PIXELS + p).copied().unwrap_or(0)
    }

    /// `X`: 784 × m, column `k` the batch's image `k`, each pixel `byte / 255`
    /// ([`crate::data::pixel_value`], as training scales them).
    pub fn x(&self) -> Result<Matrix> {
        let m = self.m();
        let mut x = vec![0.0f32; IMAGE_PIXELS * m];
        for (k, image) in self.pixels.chunks_exact(IMAGE_PIXELS).enumerate() {
            for (p, &byte) in image.iter().enumerate() {
                x[p * m + k] = pixel_value(byte);
            }
        }
        Matrix::new(IMAGE_PIXELS, m, x)
    }

    /// `Y`: 10 × m, `Y[c, k] = 1` where `c` is the label of image `k`, else 0.
    pub fn y(&self) -> Result<Matrix> {
        let m = self.m();
        let mut y = vec![0.0f32; NUM_CLASSES * m];
        for (k, &label) in self.labels.iter().enumerate() {
            y[usize::from(label) * m + k] = 1.0;
        }
        Matrix::new(NUM_CLASSES, m, y)
    }
}
