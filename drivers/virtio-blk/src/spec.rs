//! The numbers of the virtio 1.2 specification this driver uses, from their one home,
//! keel-virtio-spec (shared with the guest's device models), under the names this driver's code
//! reads them by. Only numbers: no logic.

pub use keel_virtio_spec::blk_config as config;
pub use keel_virtio_spec::blk_request as request;
pub use keel_virtio_spec::blk_status as request_status;
pub use keel_virtio_spec::features as feature;
pub use keel_virtio_spec::{cap_type, common, desc_flags, status, NO_VECTOR};
