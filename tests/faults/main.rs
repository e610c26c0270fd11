//! Faults: the daemon killed mid-write and at every metadata step, a full
//! backing disk, and a long stress run checked against a model.
//!
//! One test binary per area, one module per topic (as mountpoint-s3's
//! tests/fuse_tests/): fewer binaries to link, and the tree reads like src/.

#[path = "../common/mod.rs"]
mod common;

mod crash;
mod crash_points;
mod full_disk;
mod stress;
