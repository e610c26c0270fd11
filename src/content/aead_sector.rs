//! The AEAD sector mode (`gcm(aes)`, format 2, cipherfs(5)). Sector n,
//! holding t plaintext bytes, is stored as
//!
//! ```text
//! nonce (12 bytes, random per write) || C (t bytes) || tag (16 bytes)
//! C, tag = AES-256-GCM(K, nonce, AAD = le64(n) || file nonce, P)
//! K = HKDF-SHA256(master, "cipherfs v2 gcm content" || file nonce), 32 bytes
//! ```
//!
//! The associated data binds the sector's position and the file (its header
//! nonce), so a sector moved to another position or file fails, as does any
//! change to its nonce, text or tag. A fresh nonce per write means a sector
//! rewritten with the same data is stored differently (no equality leak
//! between versions). An all-zero stored sector is a hole and reads as zeros
//! (what a sparse backing file returns), as in gocryptfs.
//!
//! Each run wipes the stack below it when done: the VAES GCM kernel spills
//! broadcast round keys and hash-key powers there, and the threads serving
//! FUSE requests end at unmount with their stacks unwiped
//! (tests/admin/zeroize.rs found a file's key and hash key in one of them
//! after unmount, in about half of its runs under load). Once per run, not
//! per sector: 16 KiB costs well under a microsecond.

use std::sync::Arc;

use zeroize::Zeroize;

use super::header::FileHeader;
use super::offsets::{Layout, AEAD_NONCE, AEAD_TAG};
use super::sector::ContentError;
use crate::aead::{Aead, AeadError};
use crate::crypto::{random_fill, MasterKey, WipeStackOnDrop};
use crate::skcipher::Direction;

pub const AEAD_CONTENT_INFO: &[u8] = b"cipherfs v2 gcm content";

const NONCE: usize = AEAD_NONCE as usize;
const TAG: usize = AEAD_TAG as usize;

/// One file's AEAD sectors: its keyed handle and header nonce.
pub struct AeadSectors {
    tfm: Arc<Aead>,
    file_nonce: [u8; 16],
}

/// A sector of a run: its number, where it is stored in the run's buffer,
/// and its plaintext length.
struct Placed {
    n: u64,
    at: usize,
    t: usize,
}

impl AeadSectors {
    pub fn new(
        master: &MasterKey,
        header: &FileHeader,
        tfm: Arc<Aead>,
        key_len: usize,
    ) -> Result<Self, ContentError> {
        let key = master.derive(&[AEAD_CONTENT_INFO, &header.nonce], key_len)?;
        tfm.setkey(&key).map_err(ContentError::Aead)?;
        Ok(Self {
            tfm,
            file_nonce: header.nonce,
        })
    }

    /// The associated data of sector `n`: its number, then the file nonce.
    fn aad(&self, n: u64) -> [u8; 24] {
        let mut a = [0u8; 24];
        a[..8].copy_from_slice(&n.to_le_bytes());
        a[8..].copy_from_slice(&self.file_nonce);
        a
    }

    /// The sectors `first..` of a file of `p_size` bytes that a stored run
    /// of `len` bytes holds, each checked to fit.
    fn placed(
        layout: Layout,
        first: u64,
        len: usize,
        p_size: u64,
    ) -> Result<Vec<Placed>, ContentError> {
        let stride = layout.stride() as usize;
        let mut v = Vec::with_capacity(len.div_ceil(stride));
        for i in 0..len.div_ceil(stride) {
            let n = first + i as u64;
            let t = layout.sector_plain_len(n, p_size) as usize;
            let at = i * stride;
            let want = layout.stored_len(t as u64) as usize;
            if t == 0 || len < at + want {
                return Err(ContentError::SectorLength {
                    sector: n,
                    got: len.saturating_sub(at).min(stride),
                    want,
                });
            }
            v.push(Placed { n, at, t });
            if t < layout.sector as usize {
                break;
            }
        }
        if v.is_empty() {
            return Err(ContentError::SectorLength {
                sector: first,
                got: 0,
                want: layout.stored_len(layout.sector_plain_len(first, p_size)) as usize,
            });
        }
        Ok(v)
    }

    pub fn encrypt_run(
        &self,
        layout: Layout,
        first: u64,
        buf: &mut [u8],
        p_size: u64,
    ) -> Result<(), ContentError> {
        let sectors = Self::placed(layout, first, buf.len(), p_size)?;
        let _wipe = WipeStackOnDrop;
        let s = layout.sector as usize;
        // The plaintext arrives back to back; each sector's text moves to
        // its stored place, last first, so none overwrites one not yet moved.
        for (i, p) in sectors.iter().enumerate().rev() {
            buf.copy_within(i * s..i * s + p.t, p.at + NONCE);
        }
        // One system call for every nonce of the run.
        let mut nonces = vec![0u8; NONCE * sectors.len()];
        random_fill(&mut nonces)?;
        for (p, nonce) in sectors.iter().zip(nonces.chunks(NONCE)) {
            let stored = &mut buf[p.at..p.at + NONCE + p.t + TAG];
            let (head, rest) = stored.split_at_mut(NONCE);
            head.copy_from_slice(nonce);
            let (text, tag) = rest.split_at_mut(p.t);
            self.tfm
                .crypt_parts(Direction::Encrypt, nonce, &self.aad(p.n), text, tag)
                .map_err(ContentError::Aead)?;
        }
        Ok(())
    }

    pub fn decrypt_run(
        &self,
        layout: Layout,
        first: u64,
        buf: &mut [u8],
        p_size: u64,
    ) -> Result<(), ContentError> {
        let sectors = Self::placed(layout, first, buf.len(), p_size)?;
        let _wipe = WipeStackOnDrop;
        let s = layout.sector as usize;
        for (i, p) in sectors.iter().enumerate() {
            let stored = &mut buf[p.at..p.at + NONCE + p.t + TAG];
            if stored.iter().any(|&b| b != 0) {
                let (head, rest) = stored.split_at_mut(NONCE);
                let (text, tag) = rest.split_at_mut(p.t);
                self.tfm
                    .crypt_parts(Direction::Decrypt, head, &self.aad(p.n), text, tag)
                    .map_err(|e| match e {
                        AeadError::BadMessage => ContentError::Forged { sector: p.n },
                        e => ContentError::Aead(e),
                    })?;
            }
            // A hole's text is zeros already. Moving down to `i * S` only
            // overwrites sectors already done.
            buf.copy_within(p.at + NONCE..p.at + NONCE + p.t, i * s);
        }
        // What follows the plaintext (nonces, tags, stale copies) is wiped,
        // as the skcipher modes leave zeros there.
        let end = sectors.last().map_or(0, |p| (sectors.len() - 1) * s + p.t);
        buf[end..].zeroize();
        Ok(())
    }
}
