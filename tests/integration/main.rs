//! Integration tests, one binary (one link of Burn) with a module per concern.

mod cli;
mod config;
mod finite_diff;
mod gradients;
mod idx;
mod training;
mod util;
