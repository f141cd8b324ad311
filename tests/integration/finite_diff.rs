//! Central finite differences in f64 against Burn's autodiff (and the manual backward),
//! so that neither gradient oracle is trusted blindly.
//!
//! Tolerance: with step h = 1e-6 in f64 the truncation error of a central difference
//! is about h²/6·|L'''| ≈ 1e-13 and the rounding error about ε·|L|/h ≈ 2.2e-16·2.5/1e-6
//! ≈ 6e-10, so 1e-6 relative to the largest gradient entry leaves three orders of
//! margin while a wrong formula errs by percent. The inputs are random and continuous,
//! so no pre-activation lies within h of the ReLU kink (where the derivative jumps).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::DType;
use mnist_nn::autodiff::autodiff_gradients;
use mnist_nn::backend::BackendKind;
use mnist_nn::loss::cross_entropy;
use mnist_nn::manual::backward_manual;
use mnist_nn::model::{HostParams, Init, TwoLayerNet};
use mnist_nn::{IMAGE_PIXELS, NUM_CLASSES};

use crate::util::{assert_close, random_batch, values};

const H: f64 = 1e-6;
const TOL: f64 = 1e-6;

/// The four parameters as f64 host vectors.
#[derive(Clone)]
struct P64 {
    hidden: usize,
    p: [Vec<f64>; 4],
}

impl P64 {
    fn net(&self, device: &Device) -> TwoLayerNet {
        let h = self.hidden;
        let t = |v: &Vec<f64>, shape: Vec<usize>| {
            Tensor::<2>::from_data(TensorData::new(v.clone(), shape), (device, DType::F64))
        };
        TwoLayerNet {
            W1: Param::from_tensor(t(&self.p[0], vec![h, IMAGE_PIXELS])),
            b1: Param::from_tensor(t(&self.p[1], vec![1, h]).squeeze_dim(0)),
            W2: Param::from_tensor(t(&self.p[2], vec![NUM_CLASSES, h])),
            b2: Param::from_tensor(t(&self.p[3], vec![1, NUM_CLASSES]).squeeze_dim(0)),
        }
    }
}

fn loss(p: &P64, x: &Tensor<2>, y: &Tensor<2>, device: &Device) -> f64 {
    let z2 = p.net(device).forward(x.clone()).z2;
    cross_entropy(z2, y.clone()).into_scalar::<f64>()
}

#[test]
fn autodiff_and_manual_gradients_match_central_differences_in_f64() {
    for kind in [BackendKind::Ndarray, BackendKind::Flex] {
        let device = kind.device().expect("CPU backend");
        let hidden = 8;
        let m = 5;
        let host = HostParams::init(hidden, Init::He, 7);
        let to64 = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let mut p = P64 {
            hidden,
            p: [
                to64(&host.w1),
                to64(&host.b1),
                to64(&host.w2),
                to64(&host.b2),
            ],
        };
        // Non-zero biases, so that the bias gradients are not trivially those of zero.
        p.p[1]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = 0.1 * (i as f64) - 0.3);
        p.p[3]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = 0.05 * (i as f64) - 0.2);
        let (x32, y32, _) = random_batch(m, 11, &device);
        let x = x32.cast(DType::F64);
        let y = y32.cast(DType::F64);
        assert_eq!(x.dtype(), DType::F64, "{kind}: the check must run in f64");

        let (_, ad) = autodiff_gradients(&p.net(&device.clone().autodiff()), x.clone(), y.clone());
        let net = p.net(&device);
        let fwd = net.forward(x.clone());
        let manual = backward_manual(&net, x.clone(), y.clone(), &fwd);
        let autodiff = [
            values(ad.dw1),
            values(ad.db1),
            values(ad.dw2),
            values(ad.db2),
        ];
        let hand = [
            values(manual.grads.dw1),
            values(manual.grads.db1),
            values(manual.grads.dw2),
            values(manual.grads.db2),
        ];

        for (which, name) in ["W1", "b1", "W2", "b2"].iter().enumerate() {
            // Every entry of the small tensors; for W1, 40 spread over rows and columns,
            // chosen among pixels that vary (all do: the inputs are random).
            let len = p.p[which].len();
            let picks: Vec<usize> = if len > 100 {
                (0..40).map(|k| (k * 1571 + 13) % len).collect()
            } else {
                (0..len).collect()
            };
            let mut numeric = Vec::new();
            for &i in &picks {
                let mut plus = p.clone();
                plus.p[which][i] += H;
                let mut minus = p.clone();
                minus.p[which][i] -= H;
                numeric.push(
                    (loss(&plus, &x, &y, &device) - loss(&minus, &x, &y, &device)) / (2.0 * H),
                );
            }
            let pick = |g: &Vec<f64>| picks.iter().map(|&i| g[i]).collect::<Vec<f64>>();
            assert_close(
                &format!("{kind} f64 autodiff d{name} vs finite differences"),
                &pick(&autodiff[which]),
                &numeric,
                TOL,
            );
            assert_close(
                &format!("{kind} f64 manual d{name} vs finite differences"),
                &pick(&hand[which]),
                &numeric,
                TOL,
            );
        }
    }
}
