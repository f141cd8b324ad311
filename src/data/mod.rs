//! The MNIST database: the IDX reader and the dataset built on it.

pub mod classes;
pub mod idx;
pub mod mnist;

pub use idx::locate;

/// A pixel as the network sees it: the byte `0..=255` of the IDX file (or of a
/// picture) scaled to `[0, 1]`, as the design notes scale `X`.
///
/// ```
/// assert_eq!(mnist_nn::data::pixel_value(0), 0.0);
/// assert_eq!(mnist_nn::data::pixel_value(255), 1.0);
/// ```
pub fn pixel_value(byte: u8) -> f32 {
    f32::from(byte) / 255.0
}
pub use mnist::{FILES, LoadError, Mnist, MnistItem, MnistSplit, MnistTensors};
