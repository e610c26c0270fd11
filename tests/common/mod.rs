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

/// Whether the kernel behind afalg has `alg` (Debian's kernels lack
/// hctr2(aes)); says so when it does not. Any other failure is a failure.
pub fn kernel_has(alg: &str, test: &str) -> bool {
    match Skcipher::alloc(alg, Backend::Afalg) {
        Ok(_) => true,
        Err(e @ cipherfs::skcipher::SkcipherError::KernelLacksAlgorithm { .. }) => {
            // scripts/vm-test sets this when the VM's kernel is built with HCTR2.
            if alg == "hctr2(aes)" && std::env::var("CIPHERFS_REQUIRE_HCTR2").as_deref() == Ok("1")
            {
                panic!("{test}: CIPHERFS_REQUIRE_HCTR2=1 but {e}");
            }
            eprintln!("SKIP afalg {alg} in {test}: {e}");
            false
        }
        Err(e) => panic!("{test}: afalg {alg}: {e}"),
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
pub mod users;

/// Runs the test function `$name(mode)` in both sector modes, as the
/// tests `$name::xts` and `$name::gcm`.
#[macro_export]
macro_rules! in_both_content_modes {
    ($name:ident) => {
        mod $name {
            #[test]
            fn xts() {
                super::$name($crate::common::XTS)
            }

            #[test]
            fn gcm() {
                super::$name($crate::common::GCM)
            }
        }
    };
}

/// A content mode the tests of contents run over: its name (a suffix for
/// test directories) and the `init` flags that make it.
#[derive(Clone, Copy, Debug)]
pub struct ContentMode {
    pub name: &'static str,
    pub init: &'static [&'static str],
}

/// The default, `xts(aes)` plain64.
pub const XTS: ContentMode = ContentMode {
    name: "xts",
    init: &[],
};
/// The AEAD sector mode, `gcm(aes)`.
pub const GCM: ContentMode = ContentMode {
    name: "gcm",
    init: &["--cipher", "gcm-aes-256"],
};

impl ContentMode {
    /// A test's name in this mode (its directories are named after it).
    pub fn test(&self, base: &str) -> String {
        format!("{base}-{}", self.name)
    }

    /// `init` flags: this mode's, then `extra`.
    pub fn args<'a>(&self, extra: &[&'a str]) -> Vec<&'a str> {
        self.init
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect()
    }

    /// A stored file's plaintext, from the format rules alone.
    pub fn decrypt_file(
        &self,
        master: &[u8; 64],
        c: &[u8],
        sector: usize,
    ) -> Result<Vec<u8>, String> {
        match self.name {
            "gcm" => independent::decrypt_gcm_file(master, c, sector),
            _ => independent::decrypt_xts_file(master, c, sector, 64),
        }
    }
}

/// Rewrites whole sectors with alternating 0x55/0xAA fills while two readers
/// read them back, and counts sectors read that are neither. Each side builds
/// its handle in its own thread (`writer()`, `reader()`); the writer goes on
/// past `min_writes` until each reader has overlapped it `min_reads` times,
/// because on a loaded machine the writes can all end before a reader is
/// scheduled, and a race that never ran proves nothing.
/// Returns (torn sectors, reads) per reader.
pub fn torn_sector_reads<W, R>(
    min_writes: usize,
    min_reads: usize,
    writer: impl FnOnce() -> W + Send,
    reader: impl Fn() -> R + Sync,
) -> Vec<(usize, usize)>
where
    W: FnMut(u8),
    R: FnMut() -> Vec<u8>,
{
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Barrier;
    let start = Barrier::new(3);
    let done = AtomicBool::new(false);
    let reads_by = [AtomicUsize::new(0), AtomicUsize::new(0)];
    std::thread::scope(|s| {
        let readers: Vec<_> = reads_by
            .iter()
            .map(|count| {
                let (start, done, reader) = (&start, &done, &reader);
                s.spawn(move || {
                    let mut read = reader();
                    start.wait();
                    let mut torn = 0;
                    while !done.load(Ordering::SeqCst) {
                        torn += read()
                            .chunks(4096)
                            .filter(|s| {
                                !(s.iter().all(|&b| b == 0x55) || s.iter().all(|&b| b == 0xAA))
                            })
                            .count();
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    (torn, count.load(Ordering::SeqCst))
                })
            })
            .collect();
        let mut write = writer();
        start.wait();
        let mut i = 0;
        while i < min_writes
            || reads_by
                .iter()
                .any(|r| r.load(Ordering::SeqCst) < min_reads)
        {
            write(if i % 2 == 0 { 0x55 } else { 0xAA });
            i += 1;
        }
        done.store(true, Ordering::SeqCst);
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    })
}
