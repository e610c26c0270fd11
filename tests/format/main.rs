//! The on-disk format: the config, property tests of every parser, golden
//! cipher directories of every released format, the filesystem core driven
//! without a mount, and damaged cipher directories with fsck.
//!
//! One test binary per area, one module per topic (as mountpoint-s3's
//! tests/fuse_tests/): fewer binaries to link, and the tree reads like src/.

#[path = "../common/mod.rs"]
mod common;

mod config;
mod damaged;
mod fs_core;
mod fuzz;
mod golden;
