//! The application around the library: the commands that print, and the progress
//! display of training.

pub mod commands;
pub mod progress;
