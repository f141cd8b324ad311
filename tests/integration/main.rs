//! Integration tests, one binary (one link of Burn) with a module per concern.

mod augment;
mod browser;
mod classes;
mod cli;
mod config;
mod device_data;
mod faults;
mod finite_diff;
mod fuzz_idx;
mod gradients;
mod http;
mod idx;
mod import;
mod onnx;
mod optimizers;
mod preprocess;
mod resume;
mod run_dir;
mod schedule;
mod serve;
mod stopping;
mod tensorboard;
mod training;
mod use_model;
mod util;
mod webdriver;
