//! What every component shares, as Kubernetes' apimachinery: the table of served kinds,
//! selectors, the Status error, cluster addressing and the event recorder.

pub mod errors;
pub mod events;
pub mod network;
pub mod resources;
pub mod selectors;
