//! Inference: the latency of one image and the throughput over the test set, through
//! the same `predict` that `mnist-nn predict` and `eval` use.

use std::time::Instant;

use burn::prelude::*;
use mnist_nn::IMAGE_PIXELS;
use mnist_nn::data::{MnistSplit, pixel_value};
use mnist_nn::eval::predict;
use mnist_nn::model::{Init, TwoLayerNet};

use crate::median;

/// Median latency and test-set throughput of one network.
#[derive(Debug, Clone, Copy)]
pub struct Inference {
    /// Seconds to predict one image (upload, forward, read back), median.
    pub latency: f64,
    /// Images per second over all the test images in one call, median.
    pub throughput: f64,
}

/// Times `predict` for a network of `hidden` units: `reps` single images (each a
/// different test image) and `reps / 20 + 3` passes over `test`, after warm-ups.
pub fn time_inference(
    hidden: usize,
    test: &MnistSplit,
    device: &Device,
    reps: usize,
) -> anyhow::Result<Inference> {
    let model = TwoLayerNet::new(hidden, Init::He, 1, device);
    let images: Vec<f32> = test.pixels.iter().map(|&p| pixel_value(p)).collect();
    let one = |i: usize| -> anyhow::Result<f64> {
        let k = i % test.len();
        let started = Instant::now();
        predict(
            &model,
            &images[k * IMAGE_PIXELS..(k + 1) * IMAGE_PIXELS],
            device,
        )?;
        Ok(started.elapsed().as_secs_f64())
    };
    for i in 0..10 {
        one(i)?;
    }
    let latency = median((0..reps).map(one).collect::<anyhow::Result<_>>()?);
    let all = || -> anyhow::Result<f64> {
        let started = Instant::now();
        predict(&model, &images, device)?;
        Ok(started.elapsed().as_secs_f64())
    };
    all()?;
    let seconds = median(
        (0..reps / 20 + 3)
            .map(|_| all())
            .collect::<anyhow::Result<_>>()?,
    );
    Ok(Inference {
        latency,
        throughput: test.len() as f64 / seconds,
    })
}
