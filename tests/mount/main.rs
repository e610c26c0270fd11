//! A mounted filesystem, call by call against what a local filesystem does:
//! POSIX semantics, mount and I/O paths, a model-checked tree, ACLs, changes
//! made underneath, and mounts by ordinary users.
//!
//! One test binary per area, one module per topic (as mountpoint-s3's
//! tests/fuse_tests/): fewer binaries to link, and the tree reads like src/.

#[path = "../common/mod.rs"]
mod common;

mod acl;
mod basic;
mod model;
mod names;
mod nonroot;
mod ops;
mod posix;
mod tamper;
mod underneath;
