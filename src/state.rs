//! What hk8s remembers about the learner besides their progress: that they chose the
//! built-in sandbox, so that later commands use it without `--sandbox` and do not ask again.
//! Kept beside the progress in the data directory (`state.json`).

use crate::progress::{ProgressError, data_dir, save_json};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The learner's remembered choices.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct AppState {
    /// The learner chose the built-in sandbox (with `--sandbox` or by answering yes).
    #[serde(default)]
    pub sandbox_chosen: bool,
}

fn file() -> Result<PathBuf, ProgressError> {
    Ok(data_dir()?.join("state.json"))
}

impl AppState {
    /// The remembered choices; none (no data directory, no file, a damaged file) is the
    /// default, since they only spare the learner a question.
    pub(crate) fn load() -> Self {
        file()
            .ok()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Remembers that the learner chose the sandbox (written atomically).
    pub(crate) fn remember_sandbox() -> Result<(), ProgressError> {
        let mut state = Self::load();
        if state.sandbox_chosen {
            return Ok(());
        }
        state.sandbox_chosen = true;
        state.save()
    }

    fn save(&self) -> Result<(), ProgressError> {
        save_json(&file()?, self)
    }
}
