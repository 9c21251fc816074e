//! Progress through the lessons, saved per cluster and namespace in the user data dir
//! (`$HK8S_DATA_DIR`, else `$XDG_DATA_HOME/hk8s`, else `~/.local/share/hk8s`).
//! Written atomically after every step, so an interruption never leaves a torn file.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error("cannot find a data directory: set HK8S_DATA_DIR or HOME")]
    NoDataDir,
    #[error("cannot save progress to {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("progress file {path} is damaged ({message}); delete it to start over")]
    Damaged { path: String, message: String },
}

/// One lesson's progress: steps completed (in order) and whether it finished.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LessonProgress {
    pub steps_done: usize,
    pub completed: bool,
    /// The run id that filled `{run}` in the saved steps' messages, so that a resumed
    /// run reads the messages its earlier steps wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

/// Progress of every cluster+namespace.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    #[serde(default)]
    pub targets: BTreeMap<String, BTreeMap<u32, LessonProgress>>,
}

/// The directory hk8s keeps its files in.
pub fn data_dir() -> Result<PathBuf, ProgressError> {
    if let Some(dir) = std::env::var_os("HK8S_DATA_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("hk8s"));
    }
    crate::cluster::home_dir()
        .map(|h| h.join(".local/share/hk8s"))
        .ok_or(ProgressError::NoDataDir)
}

/// Writes `value` as pretty JSON to `path` atomically (a temporary file renamed over the old
/// one), so a crash mid-write never leaves a learner's saved state half written.
pub(crate) fn save_json(path: &Path, value: &impl Serialize) -> Result<(), ProgressError> {
    let err = |source| ProgressError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn file() -> Result<PathBuf, ProgressError> {
    Ok(data_dir()?.join("progress.json"))
}

impl Progress {
    /// Loads saved progress; none saved yet is empty progress.
    pub fn load() -> Result<Self, ProgressError> {
        let path = file()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ProgressError::Damaged {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ProgressError::Write {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Saves atomically (see [`save_json`]).
    pub fn save(&self) -> Result<(), ProgressError> {
        save_json(&file()?, self)
    }

    pub fn lesson(&self, key: &str, lesson: u32) -> LessonProgress {
        self.targets
            .get(key)
            .and_then(|m| m.get(&lesson))
            .cloned()
            .unwrap_or_default()
    }

    /// Records one more finished step (and completion after the last), then saves.
    pub fn record(
        &mut self,
        key: &str,
        lesson: u32,
        steps_done: usize,
        total: usize,
        run: &str,
    ) -> Result<(), ProgressError> {
        let entry = self
            .targets
            .entry(key.to_string())
            .or_default()
            .entry(lesson)
            .or_default();
        entry.steps_done = steps_done.min(total);
        entry.run = Some(run.to_string());
        if steps_done >= total {
            entry.completed = true;
        }
        self.save()
    }

    /// Marks a lesson as not done (its state was undone), then saves; `false` when it had
    /// no progress to undo.
    pub fn reopen(&mut self, key: &str, lesson: u32) -> Result<bool, ProgressError> {
        let Some(entry) = self.targets.get_mut(key).and_then(|m| m.remove(&lesson)) else {
            return Ok(false);
        };
        if entry.steps_done == 0 && !entry.completed {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Forgets a cluster+namespace's progress, then saves.
    pub fn forget(&mut self, key: &str) -> Result<(), ProgressError> {
        self.targets.remove(key);
        self.save()
    }

    /// The lessons completed for a target.
    pub fn completed(&self, key: &str) -> Vec<u32> {
        self.targets
            .get(key)
            .map(|m| {
                m.iter()
                    .filter(|(_, p)| p.completed)
                    .map(|(n, _)| *n)
                    .collect()
            })
            .unwrap_or_default()
    }
}
