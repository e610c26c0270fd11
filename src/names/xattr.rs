//! Extended attributes: only the `user.` namespace is offered. A name
//! `user.X` is stored as `user.cfs.` + base64url(E(X NUL-padded to 16)) with
//! a fixed IV, so it can be looked up; a value as a random 16-byte nonce
//! followed by the value, padded with ISO/IEC 7816-4 (0x80, then zeros) so
//! binary values round-trip, encrypted with the nonce as IV.
//! - Format 1: AES-256-CTS-CBC under HKDF(master, "cipherfs v1 xattr") for
//!   both, the name's IV all zero.
//! - Format 2: HCTR2, names under HKDF(master, "cipherfs v2 xattr names")
//!   with an all-zero tweak (equal names are equal tree-wide, as gocryptfs's,
//!   but no shared prefix shows), values under "cipherfs v2 xattr values"
//!   with the nonce as the tweak's first half.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use zeroize::Zeroizing;

use super::{iv_from, NameError, HCTR2};
use crate::crypto::MasterKey;
use crate::skcipher::{Backend, Skcipher};

pub const USER_PREFIX: &str = "user.";
pub const STORED_PREFIX: &str = "user.cfs.";
pub const XATTR_INFO: &[u8] = b"cipherfs v1 xattr";
pub const XATTR_NAMES_V2_INFO: &[u8] = b"cipherfs v2 xattr names";
pub const XATTR_VALUES_V2_INFO: &[u8] = b"cipherfs v2 xattr values";
/// Longest name after `user.` whose stored form fits XATTR_NAME_MAX (255).
pub const NAME_MAX: usize = 176;
/// Longest value whose stored form fits XATTR_SIZE_MAX (65536).
pub const VALUE_MAX: usize = 65536 - 32;

pub struct XattrCipher {
    names: Arc<Skcipher>,
    values: Arc<Skcipher>,
}

impl XattrCipher {
    /// The attributes of a cipher directory of format `format_version`.
    pub fn new(
        master: &MasterKey,
        format_version: u32,
        backend: Backend,
    ) -> Result<Self, NameError> {
        if format_version == 1 {
            let tfm = Skcipher::alloc("cts(cbc(aes))", backend)?;
            tfm.setkey(&master.derive(&[XATTR_INFO], 32)?)?;
            return Ok(Self {
                names: Arc::clone(&tfm),
                values: tfm,
            });
        }
        let names = Skcipher::alloc(HCTR2, backend)?;
        names.setkey(&master.derive(&[XATTR_NAMES_V2_INFO], 32)?)?;
        let values = Skcipher::alloc(HCTR2, backend)?;
        values.setkey(&master.derive(&[XATTR_VALUES_V2_INFO], 32)?)?;
        Ok(Self { names, values })
    }

    fn name_iv(&self) -> Vec<u8> {
        vec![0; self.names.ivsize()]
    }

    /// The stored name of a plaintext xattr name; `None` outside `user.`.
    pub fn encrypt_name(&self, name: &[u8]) -> Result<Option<String>, NameError> {
        let Some(rest) = name.strip_prefix(USER_PREFIX.as_bytes()) else {
            return Ok(None);
        };
        if rest.is_empty() || rest.contains(&0) {
            return Err(NameError::Empty);
        }
        if rest.len() > NAME_MAX {
            return Err(NameError::TooLong(rest.len()));
        }
        let mut buf = Zeroizing::new(rest.to_vec());
        buf.resize(rest.len().div_ceil(16) * 16, 0);
        super::wiped(self.names.encrypt_in_place(&self.name_iv(), &mut buf))?;
        Ok(Some(format!("{STORED_PREFIX}{}", B64URL.encode(&*buf))))
    }

    /// The plaintext name of a stored one; `None` for xattrs that are not ours.
    pub fn decrypt_name(&self, stored: &[u8]) -> Option<Vec<u8>> {
        let enc = stored.strip_prefix(STORED_PREFIX.as_bytes())?;
        let mut buf = Zeroizing::new(B64URL.decode(enc).ok()?);
        if buf.is_empty() || !buf.len().is_multiple_of(16) {
            return None;
        }
        super::wiped(self.names.decrypt_in_place(&self.name_iv(), &mut buf)).ok()?;
        let len = buf.iter().rposition(|&b| b != 0)? + 1;
        if buf.len() != len.div_ceil(16) * 16 {
            return None;
        }
        let mut name = USER_PREFIX.as_bytes().to_vec();
        name.extend_from_slice(&buf[..len]);
        Some(name)
    }

    pub fn encrypt_value(&self, value: &[u8]) -> Result<Vec<u8>, NameError> {
        if value.len() > VALUE_MAX {
            return Err(NameError::TooLong(value.len()));
        }
        let nonce: [u8; 16] = crate::crypto::random_array()?;
        let mut buf = Zeroizing::new(value.to_vec());
        buf.push(0x80);
        let padded = buf.len().div_ceil(16) * 16;
        buf.resize(padded, 0);
        super::wiped(
            self.values
                .encrypt_in_place(&iv_from(&nonce, &self.values), &mut buf),
        )?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn decrypt_value(&self, stored: &[u8]) -> Result<Vec<u8>, NameError> {
        if stored.len() < 32 || !stored.len().is_multiple_of(16) {
            return Err(NameError::Length(stored.len()));
        }
        let (nonce, ct) = stored.split_at(16);
        let mut buf = Zeroizing::new(ct.to_vec());
        super::wiped(
            self.values
                .decrypt_in_place(&iv_from(nonce, &self.values), &mut buf),
        )?;
        let end = buf
            .iter()
            .rposition(|&b| b != 0)
            .ok_or(NameError::Garbage)?;
        if buf[end] != 0x80 || buf.len() - end > 16 {
            return Err(NameError::Garbage);
        }
        Ok(buf[..end].to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_binary_values_round_trip() {
        for version in [1, 2] {
            round_trip(version);
        }
    }

    fn round_trip(version: u32) {
        let c = XattrCipher::new(&MasterKey::generate().unwrap(), version, Backend::Soft).unwrap();
        let stored = c.encrypt_name(b"user.comment").unwrap().unwrap();
        assert!(stored.starts_with(STORED_PREFIX) && stored.len() <= 255);
        assert_eq!(c.decrypt_name(stored.as_bytes()).unwrap(), b"user.comment");
        assert_eq!(
            c.encrypt_name(b"user.comment").unwrap().unwrap(),
            stored,
            "names are deterministic"
        );
        assert!(c.encrypt_name(b"security.selinux").unwrap().is_none());
        assert!(
            c.encrypt_name(&[b"user.".as_slice(), &[b'n'; NAME_MAX]].concat())
                .unwrap()
                .unwrap()
                .len()
                <= 255
        );
        assert!(c.decrypt_name(b"user.other").is_none());
        for v in [
            &b""[..],
            b"\0",
            b"\x80",
            &[0u8; 15],
            &[0x80; 16],
            &[7u8; 1000],
        ] {
            let s = c.encrypt_value(v).unwrap();
            assert_eq!(c.decrypt_value(&s).unwrap(), v);
        }
        assert_ne!(
            c.encrypt_value(b"same").unwrap(),
            c.encrypt_value(b"same").unwrap()
        );
    }
}
