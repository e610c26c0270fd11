//! The crypto layers without a mount: known answers, differential tests against
//! independent implementations and the kernel, the async request API, and
//! file contents checked by an independent decryptor.
//!
//! One test binary per area, one module per topic (as mountpoint-s3's
//! tests/fuse_tests/): fewer binaries to link, and the tree reads like src/.

#[path = "../common/mod.rs"]
mod common;

mod aead;
mod async_requests;
mod content;
mod differential;
mod hctr2;
mod kat;
