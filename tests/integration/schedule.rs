//! Learning-rate schedules: each rate against its formula at chosen steps, the rate
//! the loop logs, a schedule surviving a stop and resume, and bad schedules in a config.

use std::path::Path;

use mnist_nn::backend::BackendKind;
use mnist_nn::config::Config;
use mnist_nn::model::TwoLayerNet;
use mnist_nn::schedule::Schedule;
use mnist_nn::train::{EpochRecord, train, train_from};

use crate::util::{StopAt, small_mnist};

/// Rates are compared to 1e-12 of α: each is one or two f64 operations from the
/// formula, so only a wrong formula (a missing warm-up, a cosine of the wrong phase, a
/// decay an epoch late) can be further off than rounding.
fn assert_rate(s: Schedule, t: usize, want: f64) {
    let (alpha, per_epoch, total) = (0.1, 10, 50);
    let got = s.rate(alpha, t, per_epoch, total);
    assert!(
        (got - want).abs() < 1e-12 * alpha,
        "{s:?} at step {t}: {got}, want {want}"
    );
}

#[test]
fn each_schedule_gives_its_formula_at_chosen_steps() {
    // α = 0.1, 10 steps an epoch, 5 epochs (50 steps).
    for t in [0, 9, 49] {
        assert_rate(Schedule::Constant {}, t, 0.1);
    }
    let step = Schedule::Step {
        every: 2,
        factor: 0.5,
    };
    assert_rate(step, 0, 0.1);
    assert_rate(step, 19, 0.1); // last step of epoch 2
    assert_rate(step, 20, 0.05); // first of epoch 3
    assert_rate(step, 45, 0.025); // epoch 5: two decays
    let cosine = Schedule::Cosine { warmup_epochs: 1 };
    assert_rate(cosine, 0, 0.01); // warm-up: α·1/10
    assert_rate(cosine, 4, 0.05); // α·5/10
    assert_rate(cosine, 9, 0.1); // the warm-up's last step reaches α
    assert_rate(cosine, 10, 0.1); // the cosine starts at α
    assert_rate(cosine, 30, 0.05); // half-way through the 40 steps after warm-up
    assert_rate(
        cosine,
        49,
        0.1 * 0.5 * (1.0 + (std::f64::consts::PI * 39.0 / 40.0).cos()),
    );
    let linear = Schedule::Linear { warmup_epochs: 0 };
    assert_rate(linear, 0, 0.1);
    assert_rate(linear, 25, 0.05);
    assert_rate(linear, 40, 0.02);
    let linear_warm = Schedule::Linear { warmup_epochs: 1 };
    assert_rate(linear_warm, 9, 0.1);
    assert_rate(linear_warm, 30, 0.05);
}

fn config(schedule: &str, epochs: usize) -> Config {
    let text = format!(
        "name = \"s\"\nseed = 9\n[model]\nhidden = 16\n[train]\nepochs = {epochs}\nbatch_size = 100\nlearning_rate = 0.2\n{schedule}"
    );
    let c = Config::parse(&text, Path::new("s.toml")).unwrap();
    c.validate(Path::new("s.toml")).unwrap();
    c
}

#[test]
fn the_loop_takes_and_logs_the_scheduled_rate() {
    let c = config(
        "[train.schedule]\nkind = \"step\"\nevery = 1\nfactor = 0.5\n",
        3,
    );
    let device = BackendKind::Flex.device().unwrap();
    let model = TwoLayerNet::new(16, c.model.init, c.seed, &device);
    let trained = train(&c, model, &small_mnist(), &device, &mut ()).unwrap();
    let lrs: Vec<f64> = trained.history.iter().map(|r| r.lr).collect();
    assert_eq!(
        lrs,
        vec![0.2, 0.1, 0.05],
        "the rate of each epoch's last step"
    );
}

#[test]
fn a_scheduled_run_stopped_and_resumed_equals_an_uninterrupted_one() {
    // Cosine with warm-up depends on the step and on the run's length: a run of 4
    // epochs stopped after 2 and continued must take the same rates, bit for bit.
    let c = config(
        "[train.schedule]\nkind = \"cosine\"\nwarmup_epochs = 1\n",
        4,
    );
    let device = BackendKind::Flex.device().unwrap();
    let data = small_mnist();
    let fresh = || TwoLayerNet::new(16, c.model.init, c.seed, &device);
    let straight = train(&c, fresh(), &data, &device, &mut ()).unwrap();

    let mut stop = StopAt::new(2, None);
    let first = train(&c, fresh(), &data, &device, &mut stop).unwrap();
    assert_eq!(first.history.len(), 2, "stopped after epoch 2");
    let state = stop.state(&device);
    let resumed = train_from(&c, state, &data, &device, &mut ()).unwrap();
    assert_eq!(
        resumed.model.to_host().unwrap(),
        straight.model.to_host().unwrap(),
        "parameters after the resume"
    );
    let lrs = |h: &[EpochRecord]| h.iter().map(|r| r.lr).collect::<Vec<_>>();
    assert_eq!(lrs(&resumed.history), lrs(&straight.history));
    assert!(
        straight.history[3].lr < straight.history[1].lr,
        "the rate decays: {:?}",
        lrs(&straight.history)
    );
}

#[test]
fn bad_schedules_name_their_key() {
    let cases = [
        (
            "[train.schedule]\nkind = \"cosine\"\nwarmup_epochs = 3\n",
            "train.schedule.warmup_epochs",
        ),
        (
            "[train.schedule]\nkind = \"step\"\nevery = 0\nfactor = 0.5\n",
            "train.schedule.every",
        ),
        (
            "[train.schedule]\nkind = \"step\"\nevery = 1\nfactor = 1.5\n",
            "train.schedule.factor",
        ),
        ("[train.schedule]\nkind = \"exponential\"\n", "exponential"),
        (
            "[train.schedule]\nkind = \"cosine\"\nwarmup = 1\n",
            "warmup",
        ),
        ("[train.schedule]\nkind = \"step\"\nevery = 2\n", "factor"),
        // A key of another kind is refused with the constant schedule as with the others
        // (it was once ignored there).
        (
            "[train.schedule]\nkind = \"constant\"\nevery = 3\n",
            "unknown field `every`",
        ),
    ];
    for (schedule, needle) in cases {
        let text = format!(
            "name = \"s\"\n[model]\nhidden = 4\n[train]\nepochs = 3\nbatch_size = 10\nlearning_rate = 0.1\n{schedule}"
        );
        let e = Config::parse(&text, Path::new("s.toml"))
            .and_then(|c| c.validate(Path::new("s.toml")).map(|()| c))
            .err()
            .unwrap_or_else(|| panic!("accepted: {schedule}"))
            .to_string();
        assert!(
            e.contains(needle) && e.contains("s.toml"),
            "{schedule}: {e}"
        );
    }
}

#[test]
fn a_constant_schedule_leaves_the_written_config_as_it_was() {
    let c = config("", 1);
    assert!(!c.to_toml().contains("schedule"), "{}", c.to_toml());
    // Written out, the constant schedule alone is still read.
    let c = config("[train.schedule]\nkind = \"constant\"\n", 1);
    assert_eq!(c.train.schedule, Schedule::Constant {});
    let c = config(
        "[train.schedule]\nkind = \"linear\"\nwarmup_epochs = 1\n",
        2,
    );
    let back = Config::parse(&c.to_toml(), Path::new("back.toml")).unwrap();
    assert_eq!(back.train.schedule, Schedule::Linear { warmup_epochs: 1 });
}
