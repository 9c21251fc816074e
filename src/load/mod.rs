//! `hk8s load`: a siege-compatible HTTP load generator, also used by the limits (4) and
//! autoscaling (7) lessons through [`run`].
//!
//! Each simulated user holds one HTTP/1.1 keep-alive connection and records its own
//! statistics; they are merged into a [`Report`] when the run ends. Counting follows siege 4
//! (see [`report`](self::Report) for the exact definitions).

mod command;
mod config;
mod error;
mod report;
mod run;
mod user;

pub(crate) use command::{LoadJob, progress_bar, run_cli, show_progress};
pub(crate) use config::{DEFAULT_CONCURRENCY, parse_header, seconds};
pub use config::{DEFAULT_TIMEOUT, LoadConfig, MAX_CONCURRENCY, parse_siege_duration};
pub use error::LoadError;
pub use report::{FailureCounts, Report};
pub use run::{PROGRESS_INTERVAL, Progress, ProgressFn, run};
pub use tokio_util::sync::CancellationToken;
