//! File names, directory names and symlink targets as stored in the cipher
//! directory. The scheme is fscrypt's: the name, NUL-padded to a multiple of
//! 16 bytes, is encrypted with AES-256-CTS-CBC (the skcipher layer's
//! `cts(cbc(aes))`) under a names key HKDF(master, "cipherfs v1 names") and
//! the directory's random IV (its `cipherfs.diriv` file), then encoded as
//! unpadded base64url. An encoded name longer than 255 bytes is stored as
//! `cipherfs.longname.<base64url(SHA-256(encoded))>`, with the full encoded
//! name in a companion file of that name plus `.name` (gocryptfs's scheme).

pub mod xattr;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, MasterKey};
use crate::skcipher::{Backend, Skcipher, SkcipherError};

pub const DIRIV_NAME: &str = "cipherfs.diriv";
pub const DIRIV_LEN: usize = 16;
pub const LONGNAME_PREFIX: &str = "cipherfs.longname.";
pub const LONGNAME_SUFFIX: &str = ".name";
pub const NAMES_INFO: &[u8] = b"cipherfs v1 names";
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

/// Encrypts and decrypts names for one mount.
pub struct NameCipher {
    /// `None` in plaintext-names mode.
    tfm: Option<Arc<Skcipher>>,
}

impl NameCipher {
    pub fn new(master: &MasterKey, backend: Backend) -> Result<Self, NameError> {
        let key = master.derive(&[NAMES_INFO], 32)?;
        let tfm = Skcipher::alloc("cts(cbc(aes))", backend)?;
        tfm.setkey(&key)?;
        Ok(Self { tfm: Some(tfm) })
    }

    /// Names stored as they are (`init --plaintext-names`, for debugging).
    pub fn plaintext() -> Self {
        Self { tfm: None }
    }

    pub fn is_plaintext(&self) -> bool {
        self.tfm.is_none()
    }

    /// The stored form of `name` in a directory with IV `diriv`.
    pub fn encrypt(&self, name: &[u8], diriv: &[u8; DIRIV_LEN]) -> Result<StoredName, NameError> {
        check_plain(name)?;
        let Some(tfm) = &self.tfm else {
            let s = String::from_utf8_lossy(name).into_owned();
            if is_internal(&s) || s.starts_with(LONGNAME_PREFIX) || s.as_bytes() != name {
                // Non-UTF-8 names would not round-trip through a String here.
                return Err(NameError::Reserved(s));
            }
            return Ok(StoredName::Short(s));
        };
        let mut buf = Zeroizing::new(name.to_vec());
        buf.resize(name.len().div_ceil(16).max(1) * 16, 0);
        wiped(tfm.encrypt_in_place(diriv, &mut buf))?;
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
        let Some(tfm) = &self.tfm else {
            check_plain(encoded.as_bytes())?;
            return Ok(encoded.as_bytes().to_vec());
        };
        let mut buf = Zeroizing::new(B64URL.decode(encoded).map_err(|_| NameError::Encoding)?);
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(NameError::Length(buf.len()));
        }
        wiped(tfm.decrypt_in_place(diriv, &mut buf))?;
        let len = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        // Only the shortest padding is valid, so no two stored names can mean one name.
        if len == 0 || buf.len() != len.div_ceil(16) * 16 {
            return Err(NameError::Garbage);
        }
        let name = buf[..len].to_vec();
        check_plain(&name).map_err(|_| NameError::Garbage)?;
        Ok(name)
    }
}

/// The longest symlink target, as Linux allows (PATH_MAX less the NUL).
pub const TARGET_MAX: usize = 4095;
/// The longest stored target a backing symlink holds (PATH_MAX less the
/// NUL): plaintext targets up to 3040 bytes. A longer stored form goes to a
/// companion file at the cipher directory's root, named `LONGLINK_PREFIX`
/// and the unpadded base64url SHA-256 of the stored form, and the backing
/// symlink points to that name.
pub const LINK_MAX: usize = 4095;
pub const LONGLINK_PREFIX: &str = "cipherfs.longlink.";
/// The longest companion: a 4095-byte target padded to 4096, with its
/// 16-byte IV, base64url-encoded (5483 bytes).
pub const LONGLINK_MAX: usize = ((16 + TARGET_MAX.div_ceil(16) * 16) * 4).div_ceil(3);

/// The companion name for a stored target too long for a backing symlink.
pub fn longlink_name(full: &str) -> String {
    format!(
        "{LONGLINK_PREFIX}{}",
        B64URL.encode(Sha256::digest(full.as_bytes()))
    )
}

/// Whether a backing symlink's target names a long-target companion (a
/// stored target proper is base64url, which has no '.').
pub fn is_longlink(stored: &[u8]) -> bool {
    stored.starts_with(LONGLINK_PREFIX.as_bytes())
}

/// The stored target in a long-target companion (its bytes, read with the
/// bound LONGLINK_MAX), checked against the hash in its name `link`.
pub fn parse_long_target(full: &[u8], link: &str) -> Result<String, String> {
    let full = std::str::from_utf8(full)
        .map_err(|_| format!("long-target companion {link} is not UTF-8"))?;
    if longlink_name(full) != link {
        return Err(format!(
            "long-target companion {link} does not match its name's hash"
        ));
    }
    Ok(full.to_string())
}

impl NameCipher {
    /// A symlink target's stored form: base64url(IV || CTS-CBC(padded target))
    /// with a random IV, so the link can move between directories.
    pub fn encrypt_target(&self, target: &[u8]) -> Result<String, NameError> {
        if target.is_empty() || target.contains(&0) {
            return Err(NameError::BadByte);
        }
        if target.len() > TARGET_MAX {
            return Err(NameError::TooLong(target.len()));
        }
        let Some(tfm) = &self.tfm else {
            return Ok(String::from_utf8_lossy(target).into_owned());
        };
        let iv: [u8; 16] = crate::crypto::random_array()?;
        let mut buf = Zeroizing::new(target.to_vec());
        buf.resize(target.len().div_ceil(16).max(1) * 16, 0);
        wiped(tfm.encrypt_in_place(&iv, &mut buf))?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&buf);
        Ok(B64URL.encode(out))
    }

    pub fn decrypt_target(&self, stored: &[u8]) -> Result<Vec<u8>, NameError> {
        let Some(tfm) = &self.tfm else {
            return Ok(stored.to_vec());
        };
        let raw = B64URL.decode(stored).map_err(|_| NameError::Encoding)?;
        if raw.len() < 32 || raw.len() % 16 != 0 {
            return Err(NameError::Length(raw.len()));
        }
        let (iv, ct) = raw.split_at(16);
        let mut buf = Zeroizing::new(ct.to_vec());
        wiped(tfm.decrypt_in_place(iv, &mut buf))?;
        let len = buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if len == 0 || buf.len() != len.div_ceil(16) * 16 || buf[..len].contains(&0) {
            return Err(NameError::Garbage);
        }
        Ok(buf[..len].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> NameCipher {
        NameCipher::new(&MasterKey::generate().unwrap(), Backend::Soft).unwrap()
    }

    #[test]
    fn round_trip_every_length_and_long_names() {
        let c = cipher();
        let iv = [7u8; 16];
        for len in 1..=NAME_MAX {
            let name: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let stored = c.encrypt(&name, &iv).unwrap();
            let encoded = match &stored {
                StoredName::Short(s) => s.clone(),
                StoredName::Long { short, full } => {
                    assert!(short.len() <= NAME_MAX && short.starts_with(LONGNAME_PREFIX));
                    assert_eq!(*short, long_entry(full));
                    full.clone()
                }
            };
            assert!(!encoded.contains('.') && !encoded.contains('/'));
            assert_eq!(c.decrypt(&encoded, &iv).unwrap(), name, "len {len}");
            // 176 bytes is the longest name whose encoding fits in 255.
            assert_eq!(
                matches!(stored, StoredName::Long { .. }),
                len > 176,
                "len {len}"
            );
        }
    }

    #[test]
    fn same_name_differs_per_directory_and_bad_names_are_refused() {
        let c = cipher();
        let a = c.encrypt(b"report.pdf", &[1; 16]).unwrap();
        let b = c.encrypt(b"report.pdf", &[2; 16]).unwrap();
        assert_ne!(a, b);
        // Names are not authenticated (as in fscrypt): the wrong directory IV
        // gives some other name, never the right one.
        assert_ne!(
            c.decrypt(a.entry(), &[2; 16]).ok().as_deref(),
            Some(&b"report.pdf"[..])
        );
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            assert!(c.encrypt(bad, &[1; 16]).is_err(), "{bad:?}");
        }
        assert!(matches!(
            c.encrypt(&[b'x'; 256], &[1; 16]),
            Err(NameError::TooLong(256))
        ));
    }

    #[test]
    fn garbage_stored_names_are_errors_not_panics() {
        let c = cipher();
        let iv = [3u8; 16];
        for s in [
            "",
            "!!!!",
            "AAAA",
            "cipherfs.diriv",
            "a.b",
            // 21 characters decode to 15 bytes, not a multiple of 16.
            &"A".repeat(21),
            &"_".repeat(300),
        ] {
            assert!(c.decrypt(s, &iv).is_err(), "{s:?}");
        }
        // A name encrypted with non-canonical padding ("a" in 32 bytes) is refused.
        let tfm = Skcipher::alloc("cts(cbc(aes))", Backend::Soft).unwrap();
        let master = MasterKey::generate().unwrap();
        let c = NameCipher::new(&master, Backend::Soft).unwrap();
        tfm.setkey(&master.derive(&[NAMES_INFO], 32).unwrap())
            .unwrap();
        let mut buf = vec![0u8; 32];
        buf[0] = b'a';
        tfm.encrypt_in_place(&iv, &mut buf).unwrap();
        assert!(matches!(
            c.decrypt(&B64URL.encode(&buf), &iv),
            Err(NameError::Garbage)
        ));
        let mut slash = vec![0u8; 16];
        slash[..3].copy_from_slice(b"a/b");
        tfm.encrypt_in_place(&iv, &mut slash).unwrap();
        assert!(matches!(
            c.decrypt(&B64URL.encode(&slash), &iv),
            Err(NameError::Garbage)
        ));
    }

    #[test]
    fn symlink_targets_round_trip_and_fit_path_max() {
        let c = cipher();
        for t in [&b"/"[..], b"../a/b", &[b'x'; 3040]] {
            let s = c.encrypt_target(t).unwrap();
            assert!(s.len() <= LINK_MAX, "{}", s.len());
            assert_eq!(c.decrypt_target(s.as_bytes()).unwrap(), t);
        }
        // From 3041 bytes on the stored form needs a companion.
        for len in [3041, TARGET_MAX] {
            let t = vec![b'y'; len];
            let s = c.encrypt_target(&t).unwrap();
            assert!(s.len() > LINK_MAX && s.len() <= LONGLINK_MAX, "{}", s.len());
            let link = longlink_name(&s);
            assert!(is_longlink(link.as_bytes()) && link.len() < 100);
            assert_eq!(parse_long_target(s.as_bytes(), &link).unwrap(), s);
            assert!(parse_long_target(b"other", &link).is_err());
            assert_eq!(c.decrypt_target(s.as_bytes()).unwrap(), t);
        }
        assert_eq!(LONGLINK_MAX, 5483);
        assert_ne!(
            c.encrypt_target(b"/etc").unwrap(),
            c.encrypt_target(b"/etc").unwrap()
        );
        assert!(matches!(
            c.encrypt_target(&[b'x'; TARGET_MAX + 1]),
            Err(NameError::TooLong(_))
        ));
        assert!(c.decrypt_target(b"not base64!").is_err());
    }

    #[test]
    fn plaintext_mode_refuses_reserved_names() {
        let c = NameCipher::plaintext();
        assert_eq!(
            c.encrypt(b"notes.txt", &[0; 16]).unwrap(),
            StoredName::Short("notes.txt".into())
        );
        assert!(c.encrypt(b"cipherfs.diriv", &[0; 16]).is_err());
        assert!(c.encrypt(b"cipherfs.conf", &[0; 16]).is_err());
        assert!(is_internal("cipherfs.longname.abc.name"));
        assert!(is_internal("cipherfs.longlink.abc"));
        assert!(!is_internal("cipherfs.longname.abc"));
    }
}
