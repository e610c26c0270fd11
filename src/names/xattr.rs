//! Extended attributes: only the `user.` namespace is offered. A name
//! `user.X` is stored as `user.cfs.` + base64url(CTS-CBC(X NUL-padded)) under
//! an xattr key HKDF(master, "cipherfs v1 xattr") with a fixed IV, so it can
//! be looked up; a value as a random IV followed by the value, padded with
//! ISO/IEC 7816-4 (0x80, then zeros) so binary values round-trip, encrypted
//! under the same key with that IV.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use zeroize::Zeroizing;

use super::NameError;
use crate::crypto::MasterKey;
use crate::skcipher::{Backend, Skcipher};

pub const USER_PREFIX: &str = "user.";
pub const STORED_PREFIX: &str = "user.cfs.";
pub const XATTR_INFO: &[u8] = b"cipherfs v1 xattr";
/// Longest name after `user.` whose stored form fits XATTR_NAME_MAX (255).
pub const NAME_MAX: usize = 176;
/// Longest value whose stored form fits XATTR_SIZE_MAX (65536).
pub const VALUE_MAX: usize = 65536 - 32;
const NAME_IV: [u8; 16] = [0; 16];

pub struct XattrCipher {
    tfm: Arc<Skcipher>,
}

impl XattrCipher {
    pub fn new(master: &MasterKey, backend: Backend) -> Result<Self, NameError> {
        let tfm = Skcipher::alloc("cts(cbc(aes))", backend)?;
        tfm.setkey(&master.derive(&[XATTR_INFO], 32)?)?;
        Ok(Self { tfm })
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
        super::wiped(self.tfm.encrypt_in_place(&NAME_IV, &mut buf))?;
        Ok(Some(format!("{STORED_PREFIX}{}", B64URL.encode(&*buf))))
    }

    /// The plaintext name of a stored one; `None` for xattrs that are not ours.
    pub fn decrypt_name(&self, stored: &[u8]) -> Option<Vec<u8>> {
        let enc = stored.strip_prefix(STORED_PREFIX.as_bytes())?;
        let mut buf = Zeroizing::new(B64URL.decode(enc).ok()?);
        if buf.is_empty() || !buf.len().is_multiple_of(16) {
            return None;
        }
        super::wiped(self.tfm.decrypt_in_place(&NAME_IV, &mut buf)).ok()?;
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
        let iv: [u8; 16] = crate::crypto::random_array()?;
        let mut buf = Zeroizing::new(value.to_vec());
        buf.push(0x80);
        let padded = buf.len().div_ceil(16) * 16;
        buf.resize(padded, 0);
        super::wiped(self.tfm.encrypt_in_place(&iv, &mut buf))?;
        let mut out = iv.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    pub fn decrypt_value(&self, stored: &[u8]) -> Result<Vec<u8>, NameError> {
        if stored.len() < 32 || !stored.len().is_multiple_of(16) {
            return Err(NameError::Length(stored.len()));
        }
        let (iv, ct) = stored.split_at(16);
        let mut buf = Zeroizing::new(ct.to_vec());
        super::wiped(self.tfm.decrypt_in_place(iv, &mut buf))?;
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
        let c = XattrCipher::new(&MasterKey::generate().unwrap(), Backend::Soft).unwrap();
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
