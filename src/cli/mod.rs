//! The application around the library: the commands that print, and the progress
//! display of training.

pub mod commands;
pub mod progress;

/// An error and its causes on one line, `outer: cause: …`, as anyhow's `{:#}` writes
/// them, but without a cause whose text the line already holds (this crate's I/O errors
/// write what the OS said into their own message, and also give it as their source).
pub fn error_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}
