//! The MNIST database: the IDX reader and the dataset built on it.

pub mod idx;
pub mod mnist;

pub use idx::locate;
pub use mnist::{LoadError, Mnist, MnistItem, MnistSplit, MnistTensors};
