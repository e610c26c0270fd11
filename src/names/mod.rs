//! File names, directory names and symlink targets as stored in the cipher
//! directory (cipherfs(5), NAMES). The name is NUL-padded and encrypted in
//! one call, then encoded as unpadded base64url:
//! - format 1: AES-256-CTS-CBC (`cts(cbc(aes))`) under one names key
//!   HKDF(master, "cipherfs v1 names") with the directory's random IV (its
//!   `cipherfs.diriv`) as IV, padded to a multiple of 16 (fscrypt's v1 scheme);
//! - format 2: HCTR2 (`hctr2(aes)`) under a key per directory,
//!   HKDF(master, "cipherfs v2 names" || its `cipherfs.diriv`), with an
//!   all-zero tweak, padded to a multiple of 32 (fscrypt's HCTR2 scheme, with
//!   its 32-byte padding): a diriv chosen by a writer yields a key nobody
//!   else used, and names sharing a prefix share no stored block.
//!
//! An encoded name longer than 255 bytes is stored as
//! `cipherfs.longname.<base64url(SHA-256(encoded))>`, with the full encoded
//! name in a companion file of that name plus `.name` (gocryptfs's scheme).

mod dirkeys;
mod target;
pub mod xattr;

pub use target::*;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::NameMode;
use crate::crypto::{CryptoError, MasterKey};
use crate::skcipher::{Backend, Skcipher, SkcipherError};

pub const DIRIV_NAME: &str = "cipherfs.diriv";
pub const DIRIV_LEN: usize = 16;
pub const LONGNAME_PREFIX: &str = "cipherfs.longname.";
pub const LONGNAME_SUFFIX: &str = ".name";
pub const NAMES_INFO: &[u8] = b"cipherfs v1 names";
/// Format 2's names key of a directory: HKDF(master, this || its diriv).
pub const NAMES_V2_INFO: &[u8] = b"cipherfs v2 names";
/// Format 2's symlink-target key.
pub const TARGETS_V2_INFO: &[u8] = b"cipherfs v2 targets";
/// The longest name a backing filesystem takes, and the longest plaintext name.
pub const NAME_MAX: usize = 255;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error("empty name")]
    Empty,
    #[error("name contains '/' or NUL")]
    BadByte,
    #[error("name is . or ..")]
    Dot,
    #[error("name is {0} bytes; at most {NAME_MAX} are allowed")]
    TooLong(usize),
    #[error("stored name is not valid base64url")]
    Encoding,
    #[error("stored name decodes to {0} bytes, not a positive multiple of 16")]
    Length(usize),
    #[error("stored name does not decrypt to a valid name (damaged, or from another directory)")]
    Garbage,
    #[error("name {0:?} is reserved for cipherfs's own files")]
    Reserved(String),
    #[error(transparent)]
    Cipher(#[from] SkcipherError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl NameError {
    pub fn errno(&self) -> i32 {
        match self {
            NameError::TooLong(_) => libc::ENAMETOOLONG,
            NameError::Reserved(_) => libc::EPERM,
            NameError::Empty | NameError::BadByte | NameError::Dot => libc::EINVAL,
            _ => libc::EIO,
        }
    }
}

/// How a plaintext name is stored in its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredName {
    /// The encoded name is the directory entry.
    Short(String),
    /// The entry is `short`; `full` is written to `short + ".name"`.
    Long { short: String, full: String },
}

impl StoredName {
    pub fn entry(&self) -> &str {
        match self {
            StoredName::Short(s) => s,
            StoredName::Long { short, .. } => short,
        }
    }
}

/// Whether a cipher-directory entry is one of cipherfs's own files, hidden
/// from the plaintext view.
pub fn is_internal(entry: &str) -> bool {
    entry == DIRIV_NAME
        || entry == crate::config::CONFIG_NAME
        || entry.starts_with(LONGLINK_PREFIX)
        || (entry.starts_with(LONGNAME_PREFIX) && entry.ends_with(LONGNAME_SUFFIX))
        || entry.starts_with(".cipherfs.")
}

/// Prefix of a directory being made, before it is renamed into place with
/// its IV inside (`fs::dir`); hidden, and garbage if a crash leaves it.
pub const MKDIR_TMP_PREFIX: &str = ".cipherfs.mkdir.";

/// Prefix of a long name's companion being written, before it is renamed
/// into place (so no one ever reads half of one).
pub const LONGNAME_TMP_PREFIX: &str = ".cipherfs.longname.";

/// The longest companion cipherfs writes: the encoded form of a name of
/// NAME_MAX bytes, padded to 256 and base64url-encoded (342 bytes).
pub const LONGNAME_MAX: usize = (NAME_MAX.div_ceil(16) * 16 * 4).div_ceil(3);

/// The full encoded name in a long name's companion (its bytes, read with
/// the bound LONGNAME_MAX), checked against the hash in its `entry` name.
/// Errors say what is wrong with the companion.
pub fn parse_long_name(full: &[u8], entry: &str) -> Result<String, String> {
    let full = std::str::from_utf8(full)
        .map_err(|_| format!("{LONGNAME_SUFFIX} companion is not UTF-8"))?;
    if long_entry(full) != entry {
        return Err(format!(
            "{LONGNAME_SUFFIX} companion does not match the entry's hash"
        ));
    }
    Ok(full.to_string())
}

/// The entry name for a long encoded name.
pub fn long_entry(full: &str) -> String {
    format!(
        "{LONGNAME_PREFIX}{}",
        B64URL.encode(Sha256::digest(full.as_bytes()))
    )
}

/// A cipher call's result, after wiping the stack it used: AES code spills
/// round keys there, and name and xattr calls run on every FUSE thread.
pub(crate) fn wiped<T>(r: T) -> T {
    crate::skcipher::wipe_stack_after_call();
    r
}

fn check_plain(name: &[u8]) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > NAME_MAX {
        return Err(NameError::TooLong(name.len()));
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(NameError::BadByte);
    }
    if name == b"." || name == b".." {
        return Err(NameError::Dot);
    }
    Ok(())
}

/// How one cipher directory stores names.
enum Scheme {
    /// Names stored as they are (`init --plaintext-names`, for debugging).
    Plain,
    /// Format 1: one `cts(cbc(aes))` key for names and targets.
    Cts(Arc<Skcipher>),
    /// Format 2: `hctr2(aes)` under a key per directory, and a targets key.
    Hctr2 {
        dirs: dirkeys::DirKeys,
        targets: Arc<Skcipher>,
    },
}

/// The key, IV and padding unit of the names in one directory.
struct NameKey {
    tfm: Arc<Skcipher>,
    iv: Vec<u8>,
    unit: usize,
}

/// Encrypts and decrypts names for one mount.
pub struct NameCipher {
    scheme: Scheme,
}

impl NameCipher {
    /// The names of a cipher directory whose config says `mode`; format 2's
    /// `hctr2(aes)` runs on `backend`, format 1's `cts(cbc(aes))` too.
    pub fn new(master: &MasterKey, mode: NameMode, backend: Backend) -> Result<Self, NameError> {
        let scheme = match mode {
            NameMode::Plaintext => Scheme::Plain,
            NameMode::CtsCbc => {
                let tfm = Skcipher::alloc("cts(cbc(aes))", backend)?;
                tfm.setkey(&master.derive(&[NAMES_INFO], 32)?)?;
                Scheme::Cts(tfm)
            }
            NameMode::Hctr2 => {
                let targets = Skcipher::alloc(HCTR2, backend)?;
                targets.setkey(&master.derive(&[TARGETS_V2_INFO], 32)?)?;
                Scheme::Hctr2 {
                    dirs: dirkeys::DirKeys::new(master.expander(), backend),
                    targets,
                }
            }
        };
        Ok(Self { scheme })
    }

    /// Names stored as they are (`init --plaintext-names`, for debugging).
    pub fn plaintext() -> Self {
        Self {
            scheme: Scheme::Plain,
        }
    }

    pub fn is_plaintext(&self) -> bool {
        matches!(self.scheme, Scheme::Plain)
    }

    /// How names are encrypted in a directory with IV `diriv`.
    fn name_key(&self, diriv: &[u8; DIRIV_LEN]) -> Result<Option<NameKey>, NameError> {
        Ok(match &self.scheme {
            Scheme::Plain => None,
            Scheme::Cts(tfm) => Some(NameKey {
                tfm: Arc::clone(tfm),
                iv: diriv.to_vec(),
                unit: 16,
            }),
            Scheme::Hctr2 { dirs, .. } => Some(NameKey {
                tfm: dirs.get(diriv)?,
                iv: vec![0; 32],
                unit: 32,
            }),
        })
    }

    /// The stored form of `name` in a directory with IV `diriv`.
    pub fn encrypt(&self, name: &[u8], diriv: &[u8; DIRIV_LEN]) -> Result<StoredName, NameError> {
        check_plain(name)?;
        let Some(NameKey { tfm, iv, unit }) = self.name_key(diriv)? else {
            let s = String::from_utf8_lossy(name).into_owned();
            if is_internal(&s) || s.starts_with(LONGNAME_PREFIX) || s.as_bytes() != name {
                // Non-UTF-8 names would not round-trip through a String here.
                return Err(NameError::Reserved(s));
            }
            return Ok(StoredName::Short(s));
        };
        let mut buf = Zeroizing::new(name.to_vec());
        buf.resize(padded_len(name.len(), unit), 0);
        wiped(tfm.encrypt_in_place(&iv, &mut buf))?;
        let full = B64URL.encode(&*buf);
        Ok(if full.len() > NAME_MAX {
            StoredName::Long {
                short: long_entry(&full),
                full,
            }
        } else {
            StoredName::Short(full)
        })
    }

    /// The plaintext name of an encoded (short, or a long name's full) name.
    pub fn decrypt(&self, encoded: &str, diriv: &[u8; DIRIV_LEN]) -> Result<Vec<u8>, NameError> {
        wiped(self.decrypt_in_listing(encoded, diriv))
    }

    /// `decrypt` without the stack wipe after it, for a loop over a whole
    /// directory listing, which must call `crypto::wipe_stack_after_call`
    /// once when done (a 16 KiB wipe per name cost as much as the
    /// decryption; once per listing covers the same frames).
    pub fn decrypt_in_listing(
        &self,
        encoded: &str,
        diriv: &[u8; DIRIV_LEN],
    ) -> Result<Vec<u8>, NameError> {
        let Some(NameKey { tfm, iv, unit }) = self.name_key(diriv)? else {
            check_plain(encoded.as_bytes())?;
            return Ok(encoded.as_bytes().to_vec());
        };
        let mut buf = Zeroizing::new(B64URL.decode(encoded).map_err(|_| NameError::Encoding)?);
        if buf.is_empty() || !buf.len().is_multiple_of(unit) {
            return Err(NameError::Length(buf.len()));
        }
        tfm.decrypt_in_place(&iv, &mut buf)?;
        let len = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        // Only the shortest padding is valid, so no two stored names can mean one name.
        if len == 0 || buf.len() != padded_len(len, unit) {
            return Err(NameError::Garbage);
        }
        let name = buf[..len].to_vec();
        check_plain(&name).map_err(|_| NameError::Garbage)?;
        Ok(name)
    }

    /// The key for symlink targets, which carry their own random IV.
    fn target_key(&self) -> Option<&Arc<Skcipher>> {
        match &self.scheme {
            Scheme::Plain => None,
            Scheme::Cts(tfm) => Some(tfm),
            Scheme::Hctr2 { targets, .. } => Some(targets),
        }
    }

    /// A symlink target's stored form: base64url(nonce || E(padded target))
    /// with a random 16-byte nonce as the IV (format 2: the first half of the
    /// tweak, the rest zero), so the link can move between directories.
    pub fn encrypt_target(&self, target: &[u8]) -> Result<String, NameError> {
        if target.is_empty() || target.contains(&0) {
            return Err(NameError::BadByte);
        }
        if target.len() > TARGET_MAX {
            return Err(NameError::TooLong(target.len()));
        }
        let Some(tfm) = self.target_key() else {
            return Ok(String::from_utf8_lossy(target).into_owned());
        };
        let nonce: [u8; 16] = crate::crypto::random_array()?;
        let mut buf = Zeroizing::new(target.to_vec());
        buf.resize(padded_len(target.len(), 16), 0);
        wiped(tfm.encrypt_in_place(&iv_from(&nonce, tfm), &mut buf))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(B64URL.encode(out))
    }

    pub fn decrypt_target(&self, stored: &[u8]) -> Result<Vec<u8>, NameError> {
        let Some(tfm) = self.target_key() else {
            return Ok(stored.to_vec());
        };
        let raw = B64URL.decode(stored).map_err(|_| NameError::Encoding)?;
        if raw.len() < 32 || !raw.len().is_multiple_of(16) {
            return Err(NameError::Length(raw.len()));
        }
        let (nonce, ct) = raw.split_at(16);
        let mut buf = Zeroizing::new(ct.to_vec());
        wiped(tfm.decrypt_in_place(&iv_from(nonce, tfm), &mut buf))?;
        let len = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if len == 0 || buf.len() != padded_len(len, 16) || buf[..len].contains(&0) {
            return Err(NameError::Garbage);
        }
        Ok(buf[..len].to_vec())
    }
}

/// The skcipher algorithm of format 2's names.
pub const HCTR2: &str = "hctr2(aes)";

/// `len` NUL-padded to a multiple of `unit` (at least one unit).
fn padded_len(len: usize, unit: usize) -> usize {
    len.div_ceil(unit).max(1) * unit
}

/// A 16-byte nonce as the IV of `tfm`: as it is for CTS, zero-extended to
/// HCTR2's 32-byte tweak.
pub(crate) fn iv_from(nonce: &[u8], tfm: &Skcipher) -> Vec<u8> {
    let mut iv = nonce.to_vec();
    iv.resize(tfm.ivsize(), 0);
    iv
}

#[cfg(test)]
mod tests;
