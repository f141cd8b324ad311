//! The MNIST-style preprocessing of pictures, on synthetic shapes with known answers.

use mnist_nn::preprocess::{DIGIT_BOX, Gray, PreprocessError, centre_of_mass, preprocess};
use mnist_nn::{IMAGE_PIXELS, IMAGE_SIDE};

use crate::util::photo;

/// A `w × h` picture with a filled rectangle `[x0, x1) × [y0, y1)` of `ink` on `paper`.
fn picture(w: usize, h: usize, rect: (usize, usize, usize, usize), ink: f32, paper: f32) -> Gray {
    let (x0, y0, x1, y1) = rect;
    let pixels = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                ink
            } else {
                paper
            }
        })
        .collect();
    Gray {
        width: w,
        height: h,
        pixels,
    }
}

/// The bounding box `(width, height)` of the non-zero pixels of a 28×28 image.
fn ink_box(img: &[f32; IMAGE_PIXELS]) -> (usize, usize) {
    let on: Vec<(usize, usize)> = (0..IMAGE_PIXELS)
        .filter(|&i| img[i] > 0.0)
        .map(|i| (i % IMAGE_SIDE, i / IMAGE_SIDE))
        .collect();
    let xs = on.iter().map(|p| p.0);
    let ys = on.iter().map(|p| p.1);
    (
        xs.clone().max().unwrap() - xs.min().unwrap() + 1,
        ys.clone().max().unwrap() - ys.min().unwrap() + 1,
    )
}

#[test]
fn a_tall_bar_becomes_20_pixels_high_keeps_its_aspect_and_is_centred_by_mass() {
    // 30 × 90 bar of dark ink on white paper in a 300 × 200 picture, off-centre.
    let p = picture(300, 200, (20, 50, 50, 140), 0.0, 1.0);
    let img = preprocess(&p).unwrap();
    let (w, h) = ink_box(&img);
    assert_eq!(h, DIGIT_BOX, "longer side");
    // 30/90 of 20 px = 6.7 → 7 columns.
    assert_eq!(w, 7, "aspect kept");
    let (cx, cy) = centre_of_mass(&img).unwrap();
    assert!(
        (cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5,
        "({cx}, {cy})"
    );
    // Ink is bright (inverted from dark-on-light) and reaches full intensity.
    assert!(img.iter().copied().fold(0.0f32, f32::max) > 0.99);
}

#[test]
fn light_on_dark_and_dark_on_light_give_the_same_input() {
    let dark_on_light = picture(64, 48, (10, 5, 30, 40), 0.1, 0.9);
    let light_on_dark = picture(64, 48, (10, 5, 30, 40), 0.9, 0.1);
    assert_eq!(
        preprocess(&dark_on_light).unwrap(),
        preprocess(&light_on_dark).unwrap()
    );
}

#[test]
fn a_small_wide_shape_is_scaled_up_to_20_pixels_wide() {
    let p = picture(12, 9, (2, 3, 10, 5), 1.0, 0.0);
    let img = preprocess(&p).unwrap();
    let (w, h) = ink_box(&img);
    assert_eq!(w, DIGIT_BOX);
    assert_eq!(h, 5, "8 × 2 → 20 × 5");
}

#[test]
fn blank_and_malformed_pictures_are_errors() {
    assert_eq!(
        preprocess(&picture(20, 20, (0, 0, 0, 0), 0.0, 1.0)),
        Err(PreprocessError::Blank)
    );
    let bad = Gray {
        width: 3,
        height: 3,
        pixels: vec![0.0; 8],
    };
    assert!(matches!(
        preprocess(&bad),
        Err(PreprocessError::Size { found: 8, .. })
    ));
}

#[test]
fn an_mnist_digit_comes_back_nearly_unchanged() {
    // MNIST digits are already preprocessed: doing it again moves little ink.
    let test = &crate::util::mnist().test;
    for i in 0..50 {
        let original: Vec<f32> = test.pixels[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect();
        let again = preprocess(&Gray {
            width: 28,
            height: 28,
            pixels: original.clone(),
        })
        .unwrap();
        let moved: f32 = again
            .iter()
            .zip(&original)
            .map(|(a, b)| (a - b).abs())
            .sum();
        let total: f32 = original.iter().sum();
        // Re-cropping to the ink above 5% and resampling to 20 px shifts grey levels at
        // the edges; half the ink moving would mean a shift or a wrong scale.
        assert!(moved < 0.5 * total, "image {i}: {moved} of {total} moved");
    }
}

#[test]
fn fit_framing_scales_the_longer_side_to_28_and_centres_the_picture() {
    use mnist_nn::preprocess::{Framing, preprocess_as};
    // A dark 40×20 rectangle on white paper (a garment photographed on a light
    // background): Fashion-MNIST's framing inverts it, scales 40 → 28 and 20 → 14, and
    // pads the 14 rows to 28 around the middle: rows 7..21, every column.
    let g = picture(100, 80, (30, 30, 70, 50), 0.1, 0.95);
    let img = preprocess_as(&g, Framing::Fit).unwrap();
    assert_eq!(ink_box(&img), (28, 14));
    for y in 0..IMAGE_SIDE {
        let row_ink: f32 = img[y * IMAGE_SIDE..(y + 1) * IMAGE_SIDE].iter().sum();
        assert_eq!(row_ink > 0.0, (7..21).contains(&y), "row {y}: {row_ink}");
    }
    // The digit framing of the same picture stays within MNIST's 20-pixel box.
    let digit = preprocess_as(&g, Framing::Digit).unwrap();
    assert_eq!(ink_box(&digit), (DIGIT_BOX, DIGIT_BOX / 2));
    assert_eq!(Framing::for_dataset("fashion-mnist"), Framing::Fit);
    assert_eq!(Framing::for_dataset("mnist"), Framing::Digit);
}

#[test]
fn a_photograph_lit_from_one_side_with_grain_gives_the_flat_pictures_input() {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Normal};
    // Digits enlarged 8 times on a 400 × 360 sheet: lit from the right and from above
    // (the paper's brightness from about 0.48 to 0.86), darker towards the corners as
    // under a lens, with Gaussian grain of 6 grey levels. Taking the border's level for
    // the paper everywhere, as a flat scan allows, made the darker side of the sheet ink
    // and the digit a few pixels across in a box of the whole sheet.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let grain = Normal::new(0.0f32, 6.0 / 255.0).unwrap();
    let params = crate::util::saved_params(crate::util::trained_run());
    let device = mnist_nn::backend::BackendKind::Ndarray.device().unwrap();
    let model = &mnist_nn::model::TwoLayerNet::from_host(&params, &device);
    let predict = |model: &mnist_nn::model::TwoLayerNet, input: &[f32; IMAGE_PIXELS]| {
        mnist_nn::eval::predict(model, input, &device).unwrap()[0].digit
    };
    let mut agree = 0;
    for i in 0..20 {
        let (w, h) = (400, 360);
        let at = (rng.random_range(10..170), rng.random_range(10..130));
        let flat = preprocess(&photo(i, 8, (w, h), at, |_, _| 0.9)).unwrap();
        let noise: Vec<f32> = (0..w * h).map(|_| grain.sample(&mut rng)).collect();
        let lit = |x: usize, y: usize| {
            let (u, v) = (x as f32 / w as f32 - 0.5, y as f32 / h as f32 - 0.5);
            0.8 + 0.25 * u - 0.1 * v - 0.3 * (u * u + v * v) + noise[y * w + x]
        };
        let got = preprocess(&photo(i, 8, (w, h), at, lit)).unwrap();
        // The same box within two pixels, and the same centre of mass within a pixel
        // along each axis: the paper's floor takes the faintest grey of the strokes'
        // fringe (a pixel on either side), and a centre of mass moved by a fraction of
        // a pixel can round to the next whole-pixel shift.
        // A box taken wrongly is the whole sheet's, with the digit a few pixels across.
        let (gb, fb) = (ink_box(&got), ink_box(&flat));
        assert!(
            gb.0.abs_diff(fb.0) <= 2 && gb.1.abs_diff(fb.1) <= 2,
            "digit {i}: box {gb:?} against {fb:?}"
        );
        let (g, f) = (
            centre_of_mass(&got).unwrap(),
            centre_of_mass(&flat).unwrap(),
        );
        assert!(
            (g.0 - f.0).abs() < 1.0 && (g.1 - f.1).abs() < 1.0,
            "digit {i}: centre of mass {g:?} against {f:?}"
        );
        let (a, b) = (predict(model, &got), predict(model, &flat));
        agree += usize::from(a == b);
    }
    // The network (hidden 32, about 93% on the test set) reads the photographs as it
    // reads the flat pictures, but for a digit or two near its decision boundary.
    assert!(agree >= 18, "{agree} of 20 read alike");
}

#[test]
fn a_speck_away_from_the_digit_leaves_the_input_unchanged() {
    // A 3 × 3 fleck of dirt in a corner of a clean picture is its own small piece of
    // ink: the digit's box, and so the input, are what they are without it.
    for i in 0..10 {
        let clean = photo(i, 4, (160, 160), (20, 20), |_, _| 1.0);
        let mut dirty = clean.clone();
        for (x, y) in (150..153).flat_map(|x| (150..153).map(move |y| (x, y))) {
            dirty.pixels[y * 160 + x] = 0.3;
        }
        assert_eq!(
            preprocess(&dirty).unwrap(),
            preprocess(&clean).unwrap(),
            "digit {i}"
        );
    }
}

#[test]
fn a_picture_is_turned_upright_as_its_exif_orientation_says() {
    use image::{ImageEncoder, codecs::png::PngEncoder, imageops};
    // A phone's portrait photograph: the sensor's pixels turned a quarter to the left,
    // with Exif orientation 6 ("rotate 90° clockwise to show"). Read, it must be the
    // upright picture, pixel for pixel (PNG, so nothing is lost in between).
    let tmp = tempfile::tempdir().unwrap();
    let upright = image::GrayImage::from_fn(20, 30, |x, y| image::Luma([(x * 7 + y * 3) as u8]));
    let stored = imageops::rotate270(&upright);
    // Exif: little-endian TIFF header, one IFD with one entry, Orientation (0x0112),
    // SHORT, count 1, value 6.
    let exif = [
        b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0,
    ];
    let path = tmp.path().join("portrait.png");
    let mut encoder = PngEncoder::new(std::fs::File::create(&path).unwrap());
    encoder.set_exif_metadata(exif.to_vec()).unwrap();
    encoder
        .write_image(stored.as_raw(), 30, 20, image::ExtendedColorType::L8)
        .unwrap();
    let read = Gray::open(&path).unwrap();
    assert_eq!((read.width, read.height), (20, 30), "turned upright");
    let want: Vec<f32> = upright
        .as_raw()
        .iter()
        .map(|&v| f32::from(v) / 255.0)
        .collect();
    assert_eq!(read.pixels, want);
}
