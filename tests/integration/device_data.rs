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
        // The GPU's limit on every backend: CPU backends are not banded otherwise.
        let t = train.to_device_within(&device, MAX_TENSOR_BYTES);
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
fn permuted_labels_follow_the_order() {
    let train = &mnist().train;
    let n = train.len();
    // A rotation by 5: row i of the permuted labels is row (i + 5) mod n.
    let order: Vec<i64> = (0..n).map(|i| ((i + 5) % n) as i64).collect();
    let want: Vec<i64> = [0, 1, n - 6, n - 5, n - 1]
        .iter()
        .map(|&i| i64::from(train.labels[(i + 5) % n]))
        .collect();
    for (kind, device) in devices() {
        let t = train.to_device(&device);
        let order = Tensor::<1, Int>::from_data(TensorData::new(order.clone(), [n]), &device);
        let (one_hot, labels) = t.permuted_labels(order);
        let got: Vec<i64> = [0..2, n - 6..n - 4, n - 1..n]
            .into_iter()
            .flat_map(|r| labels.clone().slice(r).try_into_vec_as::<i64>().unwrap())
            .collect();
        assert_eq!(got, want, "{kind}: labels");
        let row = one_hot.slice(0..1).try_into_vec_as::<f32>().unwrap();
        let mut hot = vec![0.0f32; mnist_nn::NUM_CLASSES];
        hot[usize::from(train.labels[5])] = 1.0;
        assert_eq!(row, hot, "{kind}: one-hot row 0");
    }
}

#[test]
fn cpu_backends_keep_the_training_images_in_one_tensor() {
    let device = mnist_nn::backend::BackendKind::Ndarray.device().unwrap();
    assert_eq!(mnist().train.to_device(&device).bands(), 1);
}

#[test]
fn a_small_split_is_one_band() {
    let device = mnist_nn::backend::BackendKind::Ndarray.device().unwrap();
    let test = mnist().test.to_device(&device);
    assert_eq!(test.bands(), 1);
    let got = test.images_in(0..2).try_into_vec_as::<f32>().unwrap();
    assert_eq!(got, host_rows(&mnist().test.pixels, &[0, 1]));
}
