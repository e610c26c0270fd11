//! A Rust model of the Linux kernel's AEAD API (`include/crypto/aead.h`),
//! the sibling of the skcipher layer. Knows nothing about files.
//!
//! | kernel                        | here                                   |
//! |-------------------------------|----------------------------------------|
//! | `crypto_alloc_aead`           | [`Aead::alloc`]                        |
//! | `crypto_has_aead`             | [`Aead::has`]                          |
//! | `crypto_aead_ivsize`          | [`Aead::ivsize`]                       |
//! | `crypto_aead_authsize`        | [`Aead::authsize`]                     |
//! | `crypto_aead_blocksize`       | [`Aead::blocksize`]                    |
//! | `crypto_aead_setkey`          | [`Aead::setkey`]                       |
//! | `crypto_aead_setauthsize`     | [`Aead::setauthsize`]                  |
//! | `aead_request_set_crypt`      | [`AeadRequest::set_crypt`]             |
//! | `aead_request_set_ad`         | [`AeadRequest::set_ad`]                |
//! | `crypto_aead_reqtfm`          | [`AeadRequest::reqtfm`]                |
//! | `crypto_aead_encrypt`         | [`AeadRequest::encrypt`] / [`AeadRequest::submit`] |
//! | `crypto_aead_decrypt`         | [`AeadRequest::decrypt`] / [`AeadRequest::submit`] |
//! | `crypto_free_aead`            | dropping the last `Arc<Aead>`          |
//!
//! The data is laid out as the kernel's: associated data first, then the
//! text; encryption appends the tag (AAD || CT || tag), decryption takes it
//! off again (AAD || PT), and a tag that does not verify is its own error,
//! the kernel's EBADMSG ([`AeadError::BadMessage`]). Requests are checked
//! here before a backend sees them; asynchronous ones run on the skcipher
//! layer's engine with the same exactly-once completion.
//!
//! Backends: `soft` (RustCrypto `aes-gcm`) and `afalg` (the kernel's
//! `algif_aead`, through the skcipher layer's AF_ALG socket code).

mod afalg;
#[cfg(target_arch = "x86_64")]
mod gcm_vaes;
mod request;
pub mod selftest;
mod soft;

use std::sync::Arc;

use arc_swap::ArcSwapOption;

pub use request::AeadRequest;

use crate::skcipher::{Backend, Direction};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AeadError {
    #[error("unknown AEAD algorithm {0:?}; known: gcm(aes)")]
    UnknownAlgorithm(String),
    #[error("this kernel has no AF_ALG interface; use the soft backend")]
    AfAlgUnsupported,
    #[error("the kernel has no AF_ALG aead {0} (CONFIG_CRYPTO_USER_API_AEAD and the algorithm's modules: algif_aead, gcm)")]
    KernelLacksAlgorithm(&'static str),
    #[error("AF_ALG {op} failed: {message}")]
    Kernel { op: &'static str, message: String },
    #[error("the afalg backend handles at most {max} bytes per request; this one has {len}")]
    TooLong { len: usize, max: usize },
    #[error("{alg}: a key of {len} bytes is invalid; allowed key lengths are {allowed:?} bytes")]
    BadKeyLength {
        alg: &'static str,
        len: usize,
        allowed: &'static [usize],
    },
    #[error("{alg}: an authentication tag of {len} bytes is not offered; allowed: {allowed:?}")]
    BadAuthsize {
        alg: &'static str,
        len: usize,
        allowed: &'static [usize],
    },
    #[error("{alg}: an IV of {len} bytes is invalid; this algorithm takes {expected} bytes")]
    BadIvLength {
        alg: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("no key is set on this handle (setkey was never called, or the last setkey failed)")]
    NoKey,
    #[error("{len} bytes of data cannot hold {assoclen} bytes of associated data{tag}")]
    TooShort {
        len: usize,
        assoclen: usize,
        tag: String,
    },
    #[error(
        "the authentication tag does not verify (EBADMSG): the data or its associated data changed"
    )]
    BadMessage,
    #[error("the request was cancelled before it ran (the async engine shut down or the worker panicked)")]
    Cancelled,
}

impl AeadError {
    /// The errno the kernel would give.
    pub fn errno(&self) -> i32 {
        match self {
            AeadError::BadMessage => libc::EBADMSG,
            AeadError::UnknownAlgorithm(_)
            | AeadError::AfAlgUnsupported
            | AeadError::KernelLacksAlgorithm(_) => libc::ENOENT,
            AeadError::NoKey => libc::ENOKEY,
            AeadError::Cancelled => libc::ECANCELED,
            _ => libc::EINVAL,
        }
    }
}

/// An AEAD algorithm as `/proc/crypto` would show it.
#[derive(Debug)]
pub struct AeadAlgInfo {
    pub name: &'static str,
    pub ivsize: usize,
    pub blocksize: usize,
    pub key_sizes: &'static [usize],
    /// The largest tag, which is the default.
    pub maxauthsize: usize,
    /// The tag sizes both backends offer (the kernel's gcm(aes) takes 4, 8
    /// and 12 to 16; the soft backend's crate only the full 16).
    pub authsizes: &'static [usize],
}

pub static AEAD_ALGORITHMS: &[AeadAlgInfo] = &[AeadAlgInfo {
    name: "gcm(aes)",
    ivsize: 12,
    blocksize: 1,
    key_sizes: &[16, 24, 32],
    maxauthsize: 16,
    authsizes: &[16],
}];

pub fn lookup(name: &str) -> Result<&'static AeadAlgInfo, AeadError> {
    AEAD_ALGORITHMS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| AeadError::UnknownAlgorithm(name.to_string()))
}

/// A keyed instance of either backend.
enum Keyed {
    Soft(soft::SoftAead),
    Afalg(afalg::AfalgAead),
}

/// An AEAD handle (the kernel's `struct crypto_aead`).
pub struct Aead {
    alg: &'static AeadAlgInfo,
    backend: Backend,
    keyed: ArcSwapOption<Keyed>,
}

impl Aead {
    pub fn alloc(name: &str, backend: Backend) -> Result<Arc<Self>, AeadError> {
        let alg = lookup(name)?;
        // As in the kernel, a missing algorithm fails at allocation.
        if backend == Backend::Afalg {
            afalg::probe(alg.name)?;
        }
        Ok(Arc::new(Self {
            alg,
            backend,
            keyed: ArcSwapOption::empty(),
        }))
    }

    pub fn has(name: &str, backend: Backend) -> bool {
        match lookup(name) {
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

    pub fn authsize(&self) -> usize {
        self.alg.maxauthsize
    }

    pub fn blocksize(&self) -> usize {
        self.alg.blocksize
    }

    /// Sets the key. A failed setkey leaves the handle without a key.
    pub fn setkey(&self, key: &[u8]) -> Result<(), AeadError> {
        self.keyed.store(None);
        if !self.alg.key_sizes.contains(&key.len()) {
            return Err(AeadError::BadKeyLength {
                alg: self.alg.name,
                len: key.len(),
                allowed: self.alg.key_sizes,
            });
        }
        let r = match self.backend {
            Backend::Soft => soft::SoftAead::new(key).map(Keyed::Soft),
            Backend::Afalg => {
                afalg::AfalgAead::new(self.alg.name, key, self.authsize()).map(Keyed::Afalg)
            }
        };
        crate::crypto::wipe_stack();
        self.keyed.store(Some(Arc::new(r?)));
        Ok(())
    }

    /// What runs the keyed handle: the soft backend's implementation, or
    /// the kernel; empty before a key is set.
    pub fn driver(&self) -> String {
        match self.keyed.load_full().as_deref() {
            Some(Keyed::Soft(k)) => k.driver().to_string(),
            Some(Keyed::Afalg(_)) => "kernel (algif_aead)".to_string(),
            None => String::new(),
        }
    }

    /// The tag length; only the sizes both backends offer are taken.
    pub fn setauthsize(&self, len: usize) -> Result<(), AeadError> {
        if self.alg.authsizes.contains(&len) {
            Ok(())
        } else {
            Err(AeadError::BadAuthsize {
                alg: self.alg.name,
                len,
                allowed: self.alg.authsizes,
            })
        }
    }

    /// The IV must be the algorithm's length.
    fn check_iv(&self, iv: &[u8]) -> Result<(), AeadError> {
        if iv.len() == self.alg.ivsize {
            Ok(())
        } else {
            Err(AeadError::BadIvLength {
                alg: self.alg.name,
                len: iv.len(),
                expected: self.alg.ivsize,
            })
        }
    }

    /// Encrypts or decrypts `text` in place with `aad` authenticated and the
    /// tag in `tag` (written when encrypting, checked when decrypting): the
    /// kernel's request over a scatterlist of three pieces that do not sit
    /// together in memory, as a stored sector's nonce, text and tag do not
    /// sit with its associated data. A tag that does not verify is
    /// `BadMessage`, and `text` is then zeroed.
    pub fn crypt_parts(
        &self,
        dir: Direction,
        iv: &[u8],
        aad: &[u8],
        text: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        self.check_iv(iv)?;
        if tag.len() != self.authsize() {
            return Err(AeadError::BadAuthsize {
                alg: self.alg.name,
                len: tag.len(),
                allowed: self.alg.authsizes,
            });
        }
        let keyed = self.keyed.load_full().ok_or(AeadError::NoKey)?;
        let r = match &*keyed {
            Keyed::Soft(k) => k.crypt_parts(dir, iv, aad, text, tag),
            Keyed::Afalg(k) => k.crypt_parts(dir, iv, aad, text, tag),
        };
        if r.is_err() && dir == Direction::Decrypt {
            // Nothing of a forged message is handed back.
            text.fill(0);
        }
        r
    }

    /// Encrypts or decrypts `data` (AAD || text, and the tag when
    /// decrypting) in place; `assoclen` bytes at its start are only
    /// authenticated.
    pub fn crypt(
        &self,
        dir: Direction,
        iv: &[u8],
        assoclen: usize,
        data: &mut Vec<u8>,
    ) -> Result<(), AeadError> {
        self.check_iv(iv)?;
        let tag = if dir == Direction::Decrypt {
            self.authsize()
        } else {
            0
        };
        if data.len() < assoclen + tag {
            return Err(AeadError::TooShort {
                len: data.len(),
                assoclen,
                tag: if tag > 0 {
                    format!(" and a {tag}-byte tag")
                } else {
                    String::new()
                },
            });
        }
        let keyed = self.keyed.load_full().ok_or(AeadError::NoKey)?;
        match &*keyed {
            Keyed::Soft(k) => k.crypt(dir, iv, assoclen, data),
            Keyed::Afalg(k) => k.crypt(dir, iv, assoclen, data),
        }
    }
}
