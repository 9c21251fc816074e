//! Lessons: the data model parsed from lessons/, and the runner that performs the steps.

pub mod load_step;
pub mod model;
pub mod runner;

pub use model::{Action, Lesson, Step};
