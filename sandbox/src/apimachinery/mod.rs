//! What every component shares, as Kubernetes' apimachinery: the table of served kinds,
//! selectors, quantities, names, the Status error, cluster addressing, the event recorder,
//! and (as client-go) the shared informers and the workqueue the controllers and the
//! scheduler run on.

pub(crate) mod clock;
pub(crate) mod errors;
pub(crate) mod events;
pub(crate) mod informers;
pub(crate) mod names;
pub(crate) mod network;
pub(crate) mod quantity;
pub(crate) mod resources;
pub(crate) mod selectors;
pub(crate) mod workqueue;
