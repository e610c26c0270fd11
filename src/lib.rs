//! cipherfs: an encrypted overlay filesystem whose crypto runs in-process or in
//! the Linux kernel. This crate holds the layers; `main.rs` is the command line.

pub mod skcipher;
pub mod speed;
