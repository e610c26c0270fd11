//! cipherfs: an encrypted overlay filesystem whose crypto runs in-process or in
//! the Linux kernel. This crate holds the layers; `main.rs` is the command line.

// `unsafe` is allowed only at the AF_ALG syscall boundary (skcipher/afalg/sys.rs).
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod aead;
pub mod cmd;
pub mod config;
pub mod content;
pub mod crashpoint;
pub mod crypto;
pub mod exitcode;
pub mod fs;
pub mod fsck;
pub mod fuse;
pub mod helper;
pub mod logging;
pub mod names;
pub mod password;
pub mod skcipher;
pub mod speed;
pub mod untrusted;
