//! Encrypting and decrypting one file's sectors. Each file has its own key,
//! derived from the master key and its header nonce with HKDF-SHA256 under
//! one purpose string per sector mode, on its own handle.
//!
//! - skcipher modes: sector n's IV is n as a 128-bit little-endian number
//!   (dm-crypt's plain64 for `xts(aes)`; for ESSIV the kernel template
//!   encrypts it).
//! - the AEAD mode (`gcm(aes)`): see [`super::aead_sector`].
//!
//! Both run over a buffer laid out as the sectors are stored, so a request
//! goes from the FUSE buffer to the backing write without copies in the
//! skcipher modes; the AEAD mode moves each sector's text into place.

use std::sync::Arc;

use zeroize::Zeroize;

use super::aead_sector::AeadSectors;
use super::header::FileHeader;
use super::offsets::{encrypted_len, Layout, SectorMode};
use crate::aead::{Aead, AeadError};
use crate::crypto::{CryptoError, MasterKey};
use crate::skcipher::{Backend, Direction, Skcipher, SkcipherError};

pub const CONTENT_INFO: &[u8] = b"cipherfs v1 content";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    #[error(transparent)]
    Cipher(#[from] SkcipherError),
    #[error(transparent)]
    Aead(AeadError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("sector {sector} is stored as {got} bytes; {want} expected")]
    SectorLength {
        sector: u64,
        got: usize,
        want: usize,
    },
    /// An AEAD sector whose tag does not verify: changed, moved from another
    /// position or file, or written under another key.
    #[error("sector {sector} fails authentication: it was changed, or moved from another position or file")]
    Forged { sector: u64 },
}

/// IV of sector `n`.
pub fn sector_iv(n: u64) -> [u8; 16] {
    (n as u128).to_le_bytes()
}

/// The sector mode of a content cipher as the config names it.
pub fn mode_of(alg: &str) -> SectorMode {
    if crate::aead::lookup(alg).is_ok() {
        SectorMode::Aead
    } else {
        SectorMode::Skcipher
    }
}

enum Engine {
    Skcipher(Arc<Skcipher>),
    Aead(AeadSectors),
}

/// One file's content cipher.
pub struct FileCipher {
    engine: Engine,
    layout: Layout,
}

impl FileCipher {
    pub fn new(
        master: &MasterKey,
        header: &FileHeader,
        alg: &str,
        key_len: usize,
        backend: Backend,
        sector: usize,
    ) -> Result<Self, ContentError> {
        let layout = Layout::new(mode_of(alg), sector as u64);
        let engine = match layout.mode {
            SectorMode::Skcipher => {
                let key = master.derive(&[CONTENT_INFO, &header.nonce], key_len)?;
                let tfm = Skcipher::alloc(alg, backend)?;
                tfm.setkey(&key)?;
                Engine::Skcipher(tfm)
            }
            SectorMode::Aead => {
                let tfm = Aead::alloc(alg, backend).map_err(ContentError::Aead)?;
                Engine::Aead(AeadSectors::new(master, header, tfm, key_len)?)
            }
        };
        Ok(Self { engine, layout })
    }

    pub fn sector_size(&self) -> usize {
        self.layout.sector as usize
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Encrypts the `t = plain.len()` bytes of sector `n` into their stored
    /// form (`layout().stored_len(t)` bytes).
    pub fn encrypt_sector(
        &self,
        n: u64,
        plain: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ContentError> {
        let t = plain.len() as u64;
        out.clear();
        out.extend_from_slice(plain);
        out.resize(self.layout.stored_len(t) as usize, 0);
        let p_size = n * self.layout.sector + t;
        self.encrypt_run_in_place(n, out, p_size)
    }

    /// Encrypts in place the sectors `first..` of a file of plaintext size
    /// `p_size`. `buf` is as long as their stored form and starts with their
    /// plaintext (sector `first + i` at `i * S`), zeros after it; afterwards
    /// it holds the stored form.
    pub fn encrypt_run_in_place(
        &self,
        first: u64,
        buf: &mut [u8],
        p_size: u64,
    ) -> Result<(), ContentError> {
        match &self.engine {
            Engine::Skcipher(tfm) => self.skcipher_run(tfm, first, buf, p_size, Direction::Encrypt),
            Engine::Aead(a) => a.encrypt_run(self.layout, first, buf, p_size),
        }
    }

    /// Decrypts in place the stored sectors `first..` of a file of plaintext
    /// size `p_size`, laid out back to back in `buf`. Afterwards `buf` starts
    /// with their plaintext. All-zero sectors are holes and read as zeros.
    pub fn decrypt_run_in_place(
        &self,
        first: u64,
        buf: &mut [u8],
        p_size: u64,
    ) -> Result<(), ContentError> {
        match &self.engine {
            Engine::Skcipher(tfm) => self.skcipher_run(tfm, first, buf, p_size, Direction::Decrypt),
            Engine::Aead(a) => a.decrypt_run(self.layout, first, buf, p_size),
        }
    }

    fn skcipher_run(
        &self,
        tfm: &Skcipher,
        first: u64,
        buf: &mut [u8],
        p_size: u64,
        dir: Direction,
    ) -> Result<(), ContentError> {
        let s = self.layout.sector as usize;
        for (i, chunk) in buf.chunks_mut(s).enumerate() {
            let n = first + i as u64;
            let t = self.layout.sector_plain_len(n, p_size);
            let enc = encrypted_len(t) as usize;
            if t == 0 || chunk.len() < enc {
                return Err(ContentError::SectorLength {
                    sector: n,
                    got: chunk.len(),
                    want: self.layout.stored_len(t) as usize,
                });
            }
            let c = &mut chunk[..enc];
            let iv = sector_iv(n);
            match dir {
                Direction::Encrypt => tfm.encrypt_in_place(&iv, c)?,
                Direction::Decrypt if c.iter().all(|&b| b == 0) => {}
                Direction::Decrypt => {
                    tfm.decrypt_in_place(&iv, c)?;
                    // The padding is plaintext zeros; do not leave it around.
                    c[t as usize..].zeroize();
                }
            }
            if t < s as u64 {
                // The file's last sector; what follows it is filler.
                break;
            }
        }
        Ok(())
    }

    /// Decrypts sector `n`, stored as `stored` and holding `t` plaintext
    /// bytes, into `out` (`t` bytes). An all-zero stored sector is a hole
    /// and reads as zeros.
    pub fn decrypt_sector(
        &self,
        n: u64,
        stored: &[u8],
        t: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ContentError> {
        let want = self.layout.stored_len(t as u64) as usize;
        // The skcipher modes' filler after a last sector is not needed.
        let need = match self.layout.mode {
            SectorMode::Skcipher => encrypted_len(t as u64) as usize,
            SectorMode::Aead => want,
        };
        out.clear();
        if t == 0 {
            return Ok(());
        }
        if stored.len() < need {
            return Err(ContentError::SectorLength {
                sector: n,
                got: stored.len(),
                want,
            });
        }
        out.extend_from_slice(&stored[..need]);
        let p_size = n * self.layout.sector + t as u64;
        self.decrypt_run_in_place(n, out, p_size)?;
        out.truncate(t);
        Ok(())
    }
}
