//! The words that name a choice on the command line and in configs (`flex`,
//! `autodiff`, `npz`…), and the error for a word that names none.

/// A word that names none of the choices (a mode, a backend, a file format…).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{word}`; expected one of: {expected}")]
pub struct UnknownWord {
    /// What was being named: "mode", "backend", "format".
    pub what: &'static str,
    /// The word given.
    pub word: String,
    /// The words accepted, comma-separated.
    pub expected: String,
}

impl UnknownWord {
    /// The one of `all` whose `name` is `word`, or the error that lists every name.
    ///
    /// ```
    /// use mnist_nn::backend::BackendKind;
    /// use mnist_nn::word::UnknownWord;
    /// let pick = |w| UnknownWord::pick("backend", BackendKind::ALL, BackendKind::name, w);
    /// assert_eq!(pick("wgpu"), Ok(BackendKind::Wgpu));
    /// assert_eq!(
    ///     pick("cuda").unwrap_err().to_string(),
    ///     "unknown backend `cuda`; expected one of: ndarray, flex, wgpu"
    /// );
    /// ```
    pub fn pick<T: Copy, const N: usize>(
        what: &'static str,
        all: [T; N],
        name: fn(T) -> &'static str,
        word: &str,
    ) -> Result<T, UnknownWord> {
        all.into_iter()
            .find(|&t| name(t) == word)
            .ok_or_else(|| UnknownWord {
                what,
                word: word.to_string(),
                expected: all.map(name).join(", "),
            })
    }
}
