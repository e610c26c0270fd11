//! Helpers shared by the integration tests.
#![allow(dead_code)]

use cipherfs::skcipher::{Backend, Skcipher};

/// Backends to run a test through. afalg is included when the running kernel
/// has it; otherwise the test says why it skips it, and fails instead when
/// CIPHERFS_REQUIRE_AFALG=1 (set inside the VM, so CI cannot skip the kernel path).
pub fn backends(test: &str) -> Vec<Backend> {
    let mut v = vec![Backend::Soft];
    if afalg_available(test) {
        v.push(Backend::Afalg);
    }
    v
}

pub fn afalg_available(test: &str) -> bool {
    match Skcipher::alloc("xts(aes)", Backend::Afalg) {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CIPHERFS_REQUIRE_AFALG").as_deref() == Ok("1") {
                panic!("{test}: CIPHERFS_REQUIRE_AFALG=1 but afalg is unavailable: {e}");
            }
            eprintln!("SKIP afalg part of {test}: {e} (the VM test runs it against a real kernel)");
            false
        }
    }
}

/// A small deterministic generator, so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// A key of `len` bytes whose halves differ (XTS refuses equal halves).
    pub fn key(&mut self, len: usize) -> Vec<u8> {
        loop {
            let k = self.bytes(len);
            if k[..len / 2] != k[len / 2..] {
                return k;
            }
        }
    }
}

pub mod independent;
pub mod mount;
