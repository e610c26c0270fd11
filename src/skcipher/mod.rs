//! A Rust model of the Linux kernel's symmetric key cipher API
//! (`include/crypto/skcipher.h`). Knows nothing about files.
//!
//! | kernel                        | here                                   |
//! |-------------------------------|----------------------------------------|
//! | `crypto_alloc_skcipher`       | [`Skcipher::alloc`]                    |
//! | `crypto_has_skcipher`         | [`Skcipher::has`]                      |
//! | `crypto_skcipher_ivsize`      | [`Skcipher::ivsize`]                   |
//! | `crypto_skcipher_blocksize`   | [`Skcipher::blocksize`]                |
//! | `crypto_skcipher_setkey`      | [`Skcipher::setkey`]                   |
//! | `skcipher_request_alloc`      | [`SkcipherRequest::new`]               |
//! | `skcipher_request_set_crypt`  | [`SkcipherRequest::set_crypt`]         |
//! | `crypto_skcipher_reqtfm`      | [`SkcipherRequest::reqtfm`]            |
//! | `crypto_skcipher_encrypt`     | [`SkcipherRequest::encrypt`] / [`SkcipherRequest::submit`] |
//! | `crypto_free_skcipher`        | dropping the last `Arc<Skcipher>`      |
//!
//! As in the kernel, `setkey` changes the handle while `encrypt`/`decrypt` do not
//! and may run from many threads at once. Every request is validated here (IV
//! size, length rule) before a backend sees it, so both backends refuse the same
//! inputs with the same message.

pub mod afalg;
pub mod alg;
mod backend;
pub(crate) mod engine;
mod error;
mod request;
mod select;
pub mod selftest;
pub mod soft;
mod wait;

use std::sync::Arc;

use arc_swap::ArcSwapOption;

pub use alg::{AlgInfo, ALGORITHMS};
pub use backend::{Backend, BackendChoice, Direction, KeyedCipher};
pub use engine::workers as async_workers;
pub use error::SkcipherError;
pub use request::{Completion, SkcipherRequest, MAX_IV};
pub use select::{select, select_beside, Selection};
pub use wait::BatchWait;
// The stack wipes are key hygiene, so they live with the keys.
pub use crate::crypto::{wipe_stack, wipe_stack_after_call};

/// A cipher handle (the kernel's `struct crypto_skcipher`, a "tfm").
pub struct Skcipher {
    alg: &'static AlgInfo,
    backend: Backend,
    /// `None` until a setkey succeeds, and again after one fails (the kernel's
    /// CRYPTO_TFM_NEED_KEY). A running request holds a guard on the instance it
    /// started with, so a setkey never changes the key under it. `ArcSwap`
    /// rather than a lock: reading it writes no shared cache line, which
    /// measured as the main cost of a 4 KiB async request on 2 CPUs.
    keyed: ArcSwapOption<Keyed>,
}

/// A keyed instance of either backend.
// One per handle, already behind an Arc: boxing the soft variant would only
// add a pointer chase to every request.
#[allow(clippy::large_enum_variant)]
enum Keyed {
    Soft(soft::SoftCipher),
    Afalg(afalg::AfalgCipher),
}

impl Keyed {
    fn get(&self) -> &dyn KeyedCipher {
        match self {
            Keyed::Soft(k) => k,
            Keyed::Afalg(k) => k,
        }
    }
}

impl Skcipher {
    /// Allocates a handle for `name` on `backend`. For `afalg` this binds a
    /// socket, so a kernel without the algorithm fails here, as in the kernel.
    pub fn alloc(name: &str, backend: Backend) -> Result<Arc<Self>, SkcipherError> {
        let alg = alg::lookup(name)?;
        if backend == Backend::Afalg {
            afalg::probe(alg.name)?;
        }
        Ok(Arc::new(Self {
            alg,
            backend,
            keyed: ArcSwapOption::empty(),
        }))
    }

    /// Whether `name` can be allocated on `backend` here.
    pub fn has(name: &str, backend: Backend) -> bool {
        match alg::lookup(name) {
            Ok(alg) => backend == Backend::Soft || afalg::probe(alg.name).is_ok(),
            Err(_) => false,
        }
    }

    pub fn name(&self) -> &'static str {
        self.alg.name
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn ivsize(&self) -> usize {
        self.alg.ivsize
    }

    pub fn blocksize(&self) -> usize {
        self.alg.blocksize
    }

    pub fn info(&self) -> &'static AlgInfo {
        self.alg
    }

    /// Sets the key. A failed setkey leaves the handle without a key.
    pub fn setkey(&self, key: &[u8]) -> Result<(), SkcipherError> {
        let r = self.setkey_inner(key);
        wipe_stack();
        r
    }

    #[inline(never)]
    fn setkey_inner(&self, key: &[u8]) -> Result<(), SkcipherError> {
        self.keyed.store(None);
        self.alg.check_key(key)?;
        let keyed = match self.backend {
            Backend::Soft => Keyed::Soft(soft::SoftCipher::new(self.alg, key)?),
            Backend::Afalg => Keyed::Afalg(afalg::AfalgCipher::new(self.alg, key)?),
        };
        self.keyed.store(Some(Arc::new(keyed)));
        Ok(())
    }

    /// What serves this handle: our soft engine, or the kernel driver from `/proc/crypto`.
    pub fn driver(&self) -> Option<String> {
        self.keyed.load().as_ref().map(|k| k.get().driver())
    }

    fn check(&self, iv: &[u8], len: usize) -> Result<(), SkcipherError> {
        self.alg.check_iv(iv)?;
        self.alg.check_len(len)
    }

    pub(crate) fn crypt_in_place(
        &self,
        dir: Direction,
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<(), SkcipherError> {
        self.check(iv, buf.len())?;
        let keyed = self.keyed.load();
        let k = keyed.as_ref().ok_or(SkcipherError::NoKey)?;
        k.get().crypt_in_place(dir, iv, buf)
    }

    pub(crate) fn crypt(
        &self,
        dir: Direction,
        iv: &[u8],
        src: &[u8],
        dst: &mut [u8],
    ) -> Result<(), SkcipherError> {
        if src.len() != dst.len() {
            return Err(SkcipherError::BufferMismatch {
                src: src.len(),
                dst: dst.len(),
            });
        }
        self.check(iv, src.len())?;
        let keyed = self.keyed.load();
        let k = keyed.as_ref().ok_or(SkcipherError::NoKey)?;
        k.get().crypt(dir, iv, src, dst)
    }

    /// Synchronous in-place encryption of one request's worth of data.
    pub fn encrypt_in_place(&self, iv: &[u8], buf: &mut [u8]) -> Result<(), SkcipherError> {
        self.crypt_in_place(Direction::Encrypt, iv, buf)
    }

    pub fn decrypt_in_place(&self, iv: &[u8], buf: &mut [u8]) -> Result<(), SkcipherError> {
        self.crypt_in_place(Direction::Decrypt, iv, buf)
    }

    /// Synchronous encryption from `src` into `dst` (equal lengths).
    pub fn encrypt(&self, iv: &[u8], src: &[u8], dst: &mut [u8]) -> Result<(), SkcipherError> {
        self.crypt(Direction::Encrypt, iv, src, dst)
    }

    pub fn decrypt(&self, iv: &[u8], src: &[u8], dst: &mut [u8]) -> Result<(), SkcipherError> {
        self.crypt(Direction::Decrypt, iv, src, dst)
    }
}
