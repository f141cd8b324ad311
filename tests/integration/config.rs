//! Config parsing and validation: each bad config gives an error naming its key.

use std::path::Path;

use mnist_nn::backend::BackendKind;
use mnist_nn::config::{BatchSize, Config, Mode, OptimizerKind, Overrides};
use mnist_nn::error::ConfigError;
use mnist_nn::model::Init;

use crate::util::{root, write};

const GOOD: &str = r#"
name = "t"
seed = 3
mode = "autodiff"
backend = "flex"

[model]
hidden = 32
init = "uniform"

[train]
epochs = 2
batch_size = 16
learning_rate = 0.05
optimizer = "momentum"

[data]
dir = "data/mnist"
validation = 100
limit = 1000
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    let c = Config::parse(text, Path::new("test.toml"))?;
    c.validate(Path::new("test.toml"))?;
    Ok(c)
}

/// `GOOD` with `from` replaced by `to`; panics if `from` is absent, so that a test
/// cannot silently test the good config.
fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from:?} not in the good config");
    GOOD.replacen(from, to, 1)
}

/// The config is rejected with a message that contains each of `needles`.
fn rejected(text: &str, needles: &[&str]) {
    let e = parse(text).expect_err("bad config must be rejected");
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} lacks {n:?}");
    }
    assert!(
        msg.contains("test.toml"),
        "message {msg:?} must name the file"
    );
}

#[test]
fn good_config_parses_every_field() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.seed, 3);
    assert_eq!(c.mode, Mode::Autodiff);
    assert_eq!(c.backend, BackendKind::Flex);
    assert_eq!((c.model.hidden, c.model.init), (32, Init::Uniform));
    assert_eq!(c.train.batch_size, BatchSize::Size(16));
    assert_eq!(c.train.optimizer, OptimizerKind::Momentum);
    assert_eq!((c.data.validation, c.data.limit), (100, Some(1000)));
    // The resolved config written to a run directory reads back the same.
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
}

#[test]
fn shipped_configs_are_valid_and_as_documented() {
    let sgd = Config::load(&root().join("configs/sgd.toml")).unwrap();
    assert_eq!(
        (sgd.mode, sgd.model.hidden, sgd.model.init),
        (Mode::Manual, 128, Init::He)
    );
    assert_eq!(
        (
            sgd.train.learning_rate,
            sgd.train.batch_size,
            sgd.train.epochs
        ),
        (0.1, BatchSize::Size(64), 10)
    );
    let seed = Config::load(&root().join("configs/seed.toml")).unwrap();
    assert_eq!((seed.model.hidden, seed.model.init), (10, Init::Uniform));
    assert_eq!(
        (
            seed.train.learning_rate,
            seed.train.batch_size,
            seed.train.epochs
        ),
        (0.10, BatchSize::Full, 500)
    );
    let adam = Config::load(&root().join("configs/adam.toml")).unwrap();
    assert_eq!(
        (adam.mode, adam.train.optimizer, adam.model.hidden),
        (Mode::Autodiff, OptimizerKind::Adam, 800)
    );
    let fast = Config::load(&root().join("configs/fast.toml")).unwrap();
    assert_eq!(
        (
            fast.mode,
            fast.train.optimizer,
            fast.train.epochs,
            fast.model.hidden
        ),
        (Mode::Manual, OptimizerKind::Momentum, 3, 384)
    );
    let simard = Config::load(&root().join("configs/simard.toml")).unwrap();
    assert_eq!(
        (
            simard.mode,
            simard.model.hidden,
            simard.train.augment.elastic_alpha,
            simard.train.augment.elastic_sigma
        ),
        (Mode::Manual, 800, 34.0, 4.0)
    );
    // The fastest CPU backend (README's benchmark), in every shipped config.
    for c in [&sgd, &seed, &adam, &fast, &simard] {
        assert_eq!(c.backend, BackendKind::default(), "{}", c.name);
        assert_eq!(c.backend, BackendKind::Flex, "{}", c.name);
    }
}

#[test]
fn defaults_fill_optional_keys() {
    let c = parse("name = \"d\"\n[model]\nhidden = 4\n[train]\nepochs = 1\nbatch_size = \"full\"\nlearning_rate = 1\n").unwrap();
    assert_eq!(
        (c.mode, c.backend, c.model.init, c.train.optimizer),
        (
            Mode::Manual,
            BackendKind::Flex,
            Init::He,
            OptimizerKind::Sgd
        )
    );
    assert_eq!(
        (c.data.validation, c.data.limit, c.train.eval_every),
        (5000, None, 1)
    );
}

#[test]
fn unknown_key() {
    rejected(
        &with("hidden = 32", "hiden = 32"),
        &["hiden", "did you mean `hidden`?"],
    );
    rejected(
        &with("seed = 3", "seed = 3\nsede = 4"),
        &["sede", "did you mean `seed`?"],
    );
    rejected(
        &with("learning_rate = 0.05", "learning_rte = 0.05"),
        &["did you mean `learning_rate`?"],
    );
    // Nothing close: no suggestion.
    let far = Config::parse(
        &with("seed = 3", "seed = 3\ncolour = 4"),
        Path::new("c.toml"),
    );
    let message = far.unwrap_err().to_string();
    assert!(
        message.contains("colour") && !message.contains("did you mean"),
        "{message}"
    );
}

#[test]
fn misspelt_value_suggests_the_closest_one() {
    rejected(
        &with("backend = \"flex\"", "backend = \"ndaray\""),
        &["ndaray", "did you mean `ndarray`?"],
    );
}

#[test]
fn wrong_type() {
    rejected(&with("hidden = 32", "hidden = \"32\""), &["hidden"]);
    rejected(
        &with("learning_rate = 0.05", "learning_rate = \"fast\""),
        &["learning_rate"],
    );
    rejected(
        &with("batch_size = 16", "batch_size = \"half\""),
        &["batch_size", "full"],
    );
    rejected(
        &with("batch_size = 16", "batch_size = 16.5"),
        &["batch_size", "float", "full"],
    );
    rejected(
        &with("batch_size = 16", "batch_size = -16"),
        &["batch_size", "-16"],
    );
}

#[test]
fn a_missing_required_key_is_named() {
    // Each key without a default, removed in turn, is reported as missing by name (the
    // batch size's own reader once turned its absence into "expected a positive integer").
    for key in [
        "hidden = 32",
        "epochs = 2",
        "batch_size = 16",
        "learning_rate = 0.05",
    ] {
        let name = key.split(' ').next().unwrap();
        rejected(&with(key, ""), &["missing field", &format!("`{name}`")]);
    }
}

#[test]
fn invalid_toml_gives_line_and_column() {
    rejected(&with("seed = 3", "seed = = 3"), &["line 3", "column"]);
}

#[test]
fn impossible_values() {
    rejected(&with("hidden = 32", "hidden = 0"), &["model.hidden"]);
    // 2³² + 1 units once aborted on allocating W1 (13 TB); 2⁶³ − 1 overflowed its size.
    rejected(
        &with("hidden = 32", "hidden = 4294967297"),
        &["model.hidden", "at most 65536"],
    );
    rejected(
        &with("hidden = 32", "hidden = 9223372036854775807"),
        &["model.hidden", "at most 65536"],
    );
    rejected(
        &with("learning_rate = 0.05", "learning_rate = 0"),
        &["train.learning_rate"],
    );
    rejected(
        &with("learning_rate = 0.05", "learning_rate = -0.1"),
        &["train.learning_rate"],
    );
    rejected(
        &with("learning_rate = 0.05", "learning_rate = nan"),
        &["train.learning_rate"],
    );
    rejected(
        &with("learning_rate = 0.05", "learning_rate = inf"),
        &["train.learning_rate"],
    );
    rejected(
        &with("batch_size = 16", "batch_size = 0"),
        &["train.batch_size"],
    );
    rejected(&with("epochs = 2", "epochs = 0"), &["train.epochs"]);
    rejected(&with("limit = 1000", "limit = 0"), &["data.limit"]);
    rejected(&with("name = \"t\"", "name = \"../x\""), &["name"]);
    rejected(&with("hidden = 32", "hidden = -3"), &["hidden"]);
}

#[test]
fn unknown_backend_mode_init_or_optimizer() {
    rejected(
        &with("backend = \"flex\"", "backend = \"cuda\""),
        &["backend", "cuda"],
    );
    rejected(
        &with("mode = \"autodiff\"", "mode = \"auto\""),
        &["mode", "auto"],
    );
    rejected(
        &with("init = \"uniform\"", "init = \"xavier\""),
        &["init", "xavier"],
    );
    rejected(
        &with("optimizer = \"momentum\"", "optimizer = \"lbfgs\""),
        &["optimizer", "lbfgs"],
    );
}

#[test]
fn manual_mode_takes_every_optimizer_and_weight_decay() {
    // The seed's gradient descent and momentum, and Adam (with its L2 penalty too), are
    // computed in place; every other update, and weight decay on the seed's two, is the
    // Burn optimizer's on the hand-derived gradients.
    let manual = with("mode = \"autodiff\"", "mode = \"manual\"");
    let momentum = parse(&manual).expect("manual mode with momentum");
    assert!(
        !momentum.burn_optimizer(),
        "manual momentum is computed in place"
    );
    for (other, decay, burns) in [
        ("adam", "", false),
        ("adam", "\nweight_decay = 0.001", false),
        ("nesterov", "", true),
        ("adamw", "", true),
    ] {
        let text = manual.replace(
            "optimizer = \"momentum\"",
            &format!("optimizer = \"{other}\"{decay}"),
        );
        let c = parse(&text).unwrap_or_else(|e| panic!("manual mode with {other}: {e}"));
        assert_eq!(c.burn_optimizer(), burns, "manual {other}{decay}");
        assert_eq!(c.adam_in_place(), other == "adam", "manual {other}{decay}");
    }
    let decayed = parse(&manual.replace(
        "optimizer = \"momentum\"",
        "optimizer = \"momentum\"\nweight_decay = 0.001",
    ))
    .expect("manual momentum with weight decay");
    assert!(
        decayed.burn_optimizer(),
        "weight decay is Burn's optimizer's"
    );
    assert!(parse(GOOD).expect("autodiff mode").burn_optimizer());
}

#[test]
fn missing_file_names_it() {
    let e = Config::load(Path::new("/nonexistent/run.toml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/run.toml"), "{e}");
}

#[test]
fn command_line_overrides_replace_the_file() {
    let mut c = parse(GOOD).unwrap();
    c.apply(&Overrides {
        backend: Some(BackendKind::Ndarray),
        mode: Some(Mode::Manual),
        seed: Some(99),
        epochs: Some(7),
    });
    assert_eq!(
        (c.backend, c.mode, c.seed, c.train.epochs),
        (BackendKind::Ndarray, Mode::Manual, 99, 7)
    );
    // Manual mode takes momentum too; an override that makes the config invalid is
    // caught by validation.
    assert!(c.validate(Path::new("<command line>")).is_ok());
    c.apply(&Overrides {
        epochs: Some(0),
        ..Overrides::default()
    });
    let e = c.validate(Path::new("<command line>")).unwrap_err();
    assert!(e.to_string().contains("epochs"), "{e}");
}

#[test]
fn batch_larger_than_the_training_images() {
    let dir = tempfile::tempdir().unwrap();
    let text = with("batch_size = 16", "batch_size = 2000").replace(
        "dir = \"data/mnist\"",
        &format!("dir = {:?}", root().join("data/mnist")),
    );
    let path = write(dir.path(), "big.toml", &text);
    let c = Config::load(&path).unwrap();
    let e = mnist_nn::run::load_data(&c, &path).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("train.batch_size") && msg.contains("1000"),
        "{msg}"
    );
}

/// The bench times `configs/fast.toml` against PyTorch's `fast` recipe in
/// `bench/torch_ref.py` as the same recipe: the two must not drift apart.
#[test]
fn pytorchs_fast_recipe_is_fast_toml() {
    let fast = Config::load(&root().join("configs/fast.toml")).unwrap();
    let script = std::fs::read_to_string(root().join("bench/torch_ref.py")).unwrap();
    let line = script
        .lines()
        .find(|l| l.trim_start().starts_with("\"fast\":"))
        .expect("torch_ref.py's RECIPES has a \"fast\" entry");
    let BatchSize::Size(batch) = fast.train.batch_size else {
        panic!("fast.toml takes mini-batches");
    };
    // (optimizer, rate, schedule, epochs the schedule spans, batch, hidden), as
    // torch_ref.py's `to_accuracy` reads them.
    let expected = format!(
        "\"fast\": (\"{}\", {}, \"{}\", {}, {batch}, {}),",
        fast.train.optimizer.name(),
        fast.train.learning_rate,
        fast.train.schedule.name(),
        fast.train.epochs,
        fast.model.hidden
    );
    assert_eq!(line.trim(), expected);
}
