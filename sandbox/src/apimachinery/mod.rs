//! What every component shares, as Kubernetes' apimachinery: the table of served kinds,
//! selectors, quantities, names, the Status error, cluster addressing and the event
//! recorder.

pub mod errors;
pub mod events;
pub(crate) mod names;
pub mod network;
pub(crate) mod quantity;
pub mod resources;
pub mod selectors;
