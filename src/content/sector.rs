//! Encrypting and decrypting one file's sectors. Each file has its own key,
//! HKDF-SHA256(master, "cipherfs v1 content" || nonce), on its own skcipher
//! handle; sector n's IV is n as a 128-bit little-endian number (dm-crypt's
//! plain64 for `xts(aes)`; for ESSIV the kernel template encrypts it).

use std::sync::Arc;

use zeroize::Zeroize;

use super::header::FileHeader;
use super::offsets::{encrypted_len, stored_len};
use crate::crypto::{CryptoError, MasterKey};
use crate::skcipher::{Backend, BatchWait, Direction, Skcipher, SkcipherError, SkcipherRequest};

/// Runs of at least this many sectors go through the async API, one request
/// per sector spread over all CPUs; shorter runs are done in place, where the
/// queue would cost more than it saves.
pub const PARALLEL_MIN: usize = 8;

type Done = (usize, SkcipherRequest<usize>, Result<(), SkcipherError>);

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

    /// Encrypts the consecutive sectors `first..` whose plaintexts are
    /// `plains`, returning their stored forms back to back (one write).
    pub fn encrypt_run(&self, first: u64, plains: Vec<Vec<u8>>) -> Result<Vec<u8>, ContentError> {
        let mut out = Vec::with_capacity(
            plains
                .iter()
                .map(|p| stored_len(p.len() as u64) as usize)
                .sum(),
        );
        if plains.len() < PARALLEL_MIN {
            let mut stored = Vec::with_capacity(self.sector + 16);
            for (i, p) in plains.iter().enumerate() {
                self.encrypt_sector(first + i as u64, p, &mut stored)?;
                out.extend_from_slice(&stored);
            }
            return Ok(out);
        }
        let lens: Vec<u64> = plains.iter().map(|p| p.len() as u64).collect();
        let bufs = plains
            .into_iter()
            .map(|mut p| {
                let t = p.len() as u64;
                p.resize(encrypted_len(t) as usize, 0);
                p
            })
            .collect();
        for (buf, t) in self
            .run_async(first, bufs, Direction::Encrypt)?
            .into_iter()
            .zip(lens)
        {
            out.extend_from_slice(&buf);
            out.resize(out.len() + (t % 16) as usize, 0);
        }
        Ok(out)
    }

    /// Decrypts consecutive sectors `first..`; `sectors` holds each one's
    /// stored bytes and plaintext length. Returns the plaintext back to back.
    pub fn decrypt_run(
        &self,
        first: u64,
        sectors: Vec<(&[u8], usize)>,
    ) -> Result<Vec<u8>, ContentError> {
        let mut out = Vec::with_capacity(sectors.iter().map(|s| s.1).sum());
        if sectors.len() < PARALLEL_MIN {
            let mut plain = Vec::with_capacity(self.sector);
            for (i, (stored, t)) in sectors.into_iter().enumerate() {
                self.decrypt_sector(first + i as u64, stored, t, &mut plain)?;
                out.extend_from_slice(&plain);
            }
            return Ok(out);
        }
        let mut bufs = Vec::with_capacity(sectors.len());
        for (i, (stored, t)) in sectors.iter().enumerate() {
            let enc = encrypted_len(*t as u64) as usize;
            if stored.len() < enc {
                return Err(ContentError::SectorLength {
                    sector: first + i as u64,
                    got: stored.len(),
                    want: stored_len(*t as u64) as usize,
                });
            }
            bufs.push(stored[..enc].to_vec());
        }
        // Holes (all-zero sectors) are not sent to the cipher: they read as zeros.
        let holes: Vec<bool> = bufs.iter().map(|b| b.iter().all(|&x| x == 0)).collect();
        let plains = self.run_async_skipping(first, bufs, Direction::Decrypt, &holes)?;
        for ((mut p, (_, t)), hole) in plains.into_iter().zip(sectors).zip(holes) {
            if hole {
                p.fill(0);
            }
            p[t..].zeroize();
            out.extend_from_slice(&p[..t]);
        }
        Ok(out)
    }

    fn run_async(
        &self,
        first: u64,
        bufs: Vec<Vec<u8>>,
        dir: Direction,
    ) -> Result<Vec<Vec<u8>>, ContentError> {
        let none = vec![false; bufs.len()];
        self.run_async_skipping(first, bufs, dir, &none)
    }

    /// One async request per buffer (sector `first + i`), except those marked
    /// in `skip`, which come back untouched; waits for all of them once.
    fn run_async_skipping(
        &self,
        first: u64,
        bufs: Vec<Vec<u8>>,
        dir: Direction,
        skip: &[bool],
    ) -> Result<Vec<Vec<u8>>, ContentError> {
        let n = bufs.len();
        let wait = Arc::new(BatchWait::<Done>::new());
        let mut results: Vec<Option<Vec<u8>>> = vec![None; n];
        let mut submitted = 0;
        for (i, buf) in bufs.into_iter().enumerate() {
            if skip[i] {
                results[i] = Some(buf);
                continue;
            }
            submitted += 1;
            wait.add(1);
            let mut req = SkcipherRequest::new(&self.tfm, i);
            req.set_crypt(None, buf, &sector_iv(first + i as u64));
            let w = Arc::clone(&wait);
            req.submit(dir, move |r, res| w.complete((r.ctx, r, res)));
        }
        let done = wait.wait();
        debug_assert_eq!(done.len(), submitted);
        let mut first_err = None;
        for (i, req, res) in done {
            match res {
                Ok(()) => results[i] = Some(req.into_parts().0),
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        if let Some(e) = first_err {
            return Err(e.into());
        }
        Ok(results.into_iter().map(Option::unwrap_or_default).collect())
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
