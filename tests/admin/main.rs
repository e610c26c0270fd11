//! Running cipherfs as users and admins do: the daemon's lifecycle, idle and
//! signals, logging, fstab and systemd, misuse of the command line, the docs
//! against --help, the scripts users run, and secrets in memory.
//!
//! One test binary per area, one module per topic (as mountpoint-s3's
//! tests/fuse_tests/): fewer binaries to link, and the tree reads like src/.

#[path = "../common/mod.rs"]
mod common;

mod daemon;
mod docs;
mod fstab;
mod lifecycle;
mod logging;
mod misuse;
mod notify;
mod scripts;
mod zeroize;
