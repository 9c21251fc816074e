//! Lessons: the data model parsed from lessons/, and the runner that performs their steps
//! (one executor per action in `steps`, what the learner sees in `present`).

mod action;
pub(crate) mod later;
pub mod model;
mod present;
pub(crate) mod runner;
mod steps;
