//! What every component shares, as Kubernetes' apimachinery: the table of served kinds,
//! selectors, quantities, names, the Status error, cluster addressing and the event
//! recorder.

pub(crate) mod errors;
pub(crate) mod events;
pub(crate) mod informers;
pub(crate) mod names;
pub(crate) mod network;
pub(crate) mod quantity;
pub(crate) mod resources;
pub(crate) mod selectors;
pub(crate) mod workqueue;
