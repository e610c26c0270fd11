//! Encrypting and decrypting one file's sectors. Each file has its own key,
//! HKDF-SHA256(master, "cipherfs v1 content" || nonce), on its own skcipher
//! handle; sector n's IV is n as a 128-bit little-endian number (dm-crypt's
//! plain64 for `xts(aes)`; for ESSIV the kernel template encrypts it).

use std::sync::Arc;

use zeroize::Zeroize;

use super::header::FileHeader;
use super::offsets::{encrypted_len, sector_plain_len, stored_len};
use crate::crypto::{CryptoError, MasterKey};
use crate::skcipher::{Backend, Direction, Skcipher, SkcipherError};

pub const CONTENT_INFO: &[u8] = b"cipherfs v1 content";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    #[error(transparent)]
    Cipher(#[from] SkcipherError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("sector {sector} is stored as {got} bytes; {want} expected")]
    SectorLength {
        sector: u64,
        got: usize,
        want: usize,
    },
}

/// IV of sector `n`.
pub fn sector_iv(n: u64) -> [u8; 16] {
    (n as u128).to_le_bytes()
}

/// One file's content cipher.
pub struct FileCipher {
    tfm: Arc<Skcipher>,
    sector: usize,
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
        let key = master.derive(&[CONTENT_INFO, &header.nonce], key_len)?;
        let tfm = Skcipher::alloc(alg, backend)?;
        tfm.setkey(&key)?;
        Ok(Self { tfm, sector })
    }

    pub fn sector_size(&self) -> usize {
        self.sector
    }

    pub fn handle(&self) -> &Arc<Skcipher> {
        &self.tfm
    }

    /// Encrypts the `t = plain.len()` bytes of sector `n` into their stored
    /// form (`stored_len(t)` bytes): zero-padded to 16, encrypted, then
    /// `t % 16` zero filler bytes.
    pub fn encrypt_sector(
        &self,
        n: u64,
        plain: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ContentError> {
        let t = plain.len() as u64;
        out.clear();
        out.extend_from_slice(plain);
        out.resize(encrypted_len(t) as usize, 0);
        self.tfm.encrypt_in_place(&sector_iv(n), out)?;
        out.resize(stored_len(t) as usize, 0);
        Ok(())
    }

    /// Encrypts in place the sectors `first..` of a file of plaintext size
    /// `p_size`, laid out in `buf` as they are stored (sector `first + i` at
    /// `i * S`), each holding its plaintext zero-padded to its stored length.
    /// One buffer from the FUSE request to the backing write: no copies.
    pub fn encrypt_run_in_place(
        &self,
        first: u64,
        buf: &mut [u8],
        p_size: u64,
    ) -> Result<(), ContentError> {
        self.run_in_place(first, buf, p_size, Direction::Encrypt)
    }

    /// Decrypts in place the stored sectors `first..` of a file of plaintext
    /// size `p_size`, laid out back to back in `buf`. Afterwards `buf` starts
    /// with their plaintext. All-zero sectors are holes and stay zeros.
    pub fn decrypt_run_in_place(
        &self,
        first: u64,
        buf: &mut [u8],
        p_size: u64,
    ) -> Result<(), ContentError> {
        self.run_in_place(first, buf, p_size, Direction::Decrypt)
    }

    fn run_in_place(
        &self,
        first: u64,
        buf: &mut [u8],
        p_size: u64,
        dir: Direction,
    ) -> Result<(), ContentError> {
        let s = self.sector;
        for (i, chunk) in buf.chunks_mut(s).enumerate() {
            let n = first + i as u64;
            let t = sector_plain_len(n, p_size, s as u64);
            let enc = encrypted_len(t) as usize;
            if t == 0 || chunk.len() < enc {
                return Err(ContentError::SectorLength {
                    sector: n,
                    got: chunk.len(),
                    want: stored_len(t) as usize,
                });
            }
            let c = &mut chunk[..enc];
            let iv = sector_iv(n);
            match dir {
                Direction::Encrypt => self.tfm.encrypt_in_place(&iv, c)?,
                Direction::Decrypt if c.iter().all(|&b| b == 0) => {}
                Direction::Decrypt => {
                    self.tfm.decrypt_in_place(&iv, c)?;
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
    /// bytes, into `out` (`t` bytes). A sector whose encrypted part is all
    /// zeros is a hole and reads as zeros.
    pub fn decrypt_sector(
        &self,
        n: u64,
        stored: &[u8],
        t: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ContentError> {
        let enc = encrypted_len(t as u64) as usize;
        if stored.len() < enc {
            return Err(ContentError::SectorLength {
                sector: n,
                got: stored.len(),
                want: stored_len(t as u64) as usize,
            });
        }
        out.clear();
        if stored[..enc].iter().all(|&b| b == 0) {
            out.resize(t, 0);
            return Ok(());
        }
        out.extend_from_slice(&stored[..enc]);
        self.tfm.decrypt_in_place(&sector_iv(n), out)?;
        // The padding is plaintext zeros; do not leave it around beyond `t`.
        out[t..].zeroize();
        out.truncate(t);
        Ok(())
    }
}
