//! The process kubelet: runs the pods bound to the sandbox's node as local processes.

pub mod probes;
pub mod process;
