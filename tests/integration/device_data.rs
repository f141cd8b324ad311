//! The splits on the device: the 55,000 training images exceed the largest tensor a
//! device is asked for, so they are stored in pixel bands; gathering from the bands must
//! give back exactly the host's images.

use burn::prelude::*;
use mnist_nn::IMAGE_PIXELS;
use mnist_nn::data::mnist::MAX_TENSOR_BYTES;

use crate::util::{devices, mnist};

/// The host's images `rows`, scaled to `[0, 1]` as the device copy is.
fn host_rows(pixels: &[u8], rows: &[usize]) -> Vec<f32> {
    rows.iter()
        .flat_map(|&r| &pixels[r * IMAGE_PIXELS..(r + 1) * IMAGE_PIXELS])
        .map(|&p| f32::from(p) / 255.0)
        .collect()
}

#[test]
fn banded_training_images_gather_back_exactly() {
    let train = &mnist().train;
    let n = train.len();
    assert!(
        n * IMAGE_PIXELS * 4 > MAX_TENSOR_BYTES,
        "the training split must need bands for this test to mean anything"
    );
    // First, last, and rows around the middle, in shuffled order.
    let rows = [n - 1, 0, n / 2, 7, n / 2 + 1, 12_345];
    let want = host_rows(&train.pixels, &rows);
    let range = n - 3..n;
    let want_range = host_rows(&train.pixels, &range.clone().collect::<Vec<_>>());
    for (kind, device) in devices() {
        let t = train.to_device(&device);
        assert!(t.bands() >= 2, "{kind}: {} band(s)", t.bands());
        assert_eq!(t.len(), n);
        let idx: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), &device);
        let got = t.images_at(idx);
        assert_eq!(got.dims(), [rows.len(), IMAGE_PIXELS], "{kind}");
        // Exact: the values are copied, never computed.
        assert_eq!(
            got.try_into_vec_as::<f32>().unwrap(),
            want,
            "{kind}: gathered rows"
        );
        let got = t.images_in(range.clone()).try_into_vec_as::<f32>().unwrap();
        assert_eq!(got, want_range, "{kind}: a range of rows");
    }
}

#[test]
fn a_small_split_is_one_band() {
    let device = mnist_nn::backend::BackendKind::Ndarray.device().unwrap();
    let test = mnist().test.to_device(&device);
    assert_eq!(test.bands(), 1);
    let got = test.images_in(0..2).try_into_vec_as::<f32>().unwrap();
    assert_eq!(got, host_rows(&mnist().test.pixels, &[0, 1]));
}
