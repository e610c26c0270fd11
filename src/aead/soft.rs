//! The in-process AEAD backend: our VAES/VPCLMULQDQ GCM (`gcm_vaes.rs`)
//! where the CPU has it and the key is 16 or 32 bytes, RustCrypto `aes-gcm`
//! otherwise (its key schedule and hash key wipe themselves on drop, feature
//! `zeroize`).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce, Tag};

use super::AeadError;
use crate::skcipher::Direction;

type Aes192Gcm = AesGcm<aes::Aes192, aes::cipher::consts::U12>;

/// A keyed `gcm(aes)`, each key size boxed to its own size (as the
/// skcipher layer's AES keys are, so no move leaves part of one behind).
pub enum SoftAead {
    A128(Box<Aes128Gcm>),
    A192(Box<Aes192Gcm>),
    A256(Box<Aes256Gcm>),
    #[cfg(target_arch = "x86_64")]
    Fast(Box<super::gcm_vaes::GcmKeys>),
}

const TAG: usize = 16;

impl SoftAead {
    /// What runs this key, for `speed` and `backends`.
    pub fn driver(&self) -> &'static str {
        match self {
            #[cfg(target_arch = "x86_64")]
            Self::Fast(_) => "cipherfs soft (VAES/VPCLMULQDQ/AVX-512 GCM)",
            _ => "cipherfs soft (RustCrypto aes-gcm)",
        }
    }

    /// `key` is 16, 24 or 32 bytes (the table checks it first).
    pub fn new(key: &[u8]) -> Result<Self, AeadError> {
        let bad = || AeadError::BadKeyLength {
            alg: "gcm(aes)",
            len: key.len(),
            allowed: &[16, 24, 32],
        };
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = super::gcm_vaes::new_keys(key) {
            return Ok(Self::Fast(k));
        }
        Ok(match key.len() {
            16 => Self::A128(Box::new(Aes128Gcm::new_from_slice(key).map_err(|_| bad())?)),
            24 => Self::A192(Box::new(Aes192Gcm::new_from_slice(key).map_err(|_| bad())?)),
            _ => Self::A256(Box::new(Aes256Gcm::new_from_slice(key).map_err(|_| bad())?)),
        })
    }

    /// `data` is AAD || PT (encrypt: becomes AAD || CT || tag) or
    /// AAD || CT || tag (decrypt: becomes AAD || PT); lengths were checked.
    /// Runs through the three-piece form, as every implementation here
    /// works detached.
    pub fn crypt(
        &self,
        dir: Direction,
        iv: &[u8],
        assoclen: usize,
        data: &mut Vec<u8>,
    ) -> Result<(), AeadError> {
        let mut tag = [0u8; TAG];
        match dir {
            Direction::Encrypt => {
                let (ad, text) = data.split_at_mut(assoclen);
                self.crypt_parts(dir, iv, ad, text, &mut tag)?;
                data.extend_from_slice(&tag);
            }
            Direction::Decrypt => {
                let end = data.len() - TAG;
                tag.copy_from_slice(&data[end..]);
                let (ad, text) = data[..end].split_at_mut(assoclen);
                if let Err(e) = self.crypt_parts(dir, iv, ad, text, &mut tag) {
                    // Nothing of a forged message is handed back.
                    text.fill(0);
                    return Err(e);
                }
                data.truncate(end);
            }
        }
        Ok(())
    }

    /// `text` in place, `aad` beside it, the 16-byte tag in `tag`; lengths
    /// were checked.
    pub fn crypt_parts(
        &self,
        dir: Direction,
        iv: &[u8],
        aad: &[u8],
        text: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        let nonce = nonce(iv)?;
        match self {
            Self::A128(c) => run_parts(c.as_ref(), dir, &nonce, aad, text, tag),
            Self::A192(c) => run_parts(c.as_ref(), dir, &nonce, aad, text, tag),
            Self::A256(c) => run_parts(c.as_ref(), dir, &nonce, aad, text, tag),
            #[cfg(target_arch = "x86_64")]
            Self::Fast(k) => fast_parts(k, dir, &nonce.into(), aad, text, tag),
        }
    }
}

fn nonce(iv: &[u8]) -> Result<Nonce<aes::cipher::consts::U12>, AeadError> {
    Nonce::<aes::cipher::consts::U12>::try_from(iv).map_err(|_| AeadError::BadIvLength {
        alg: "gcm(aes)",
        len: iv.len(),
        expected: 12,
    })
}

fn run_parts<A>(
    c: &A,
    dir: Direction,
    nonce: &Nonce<aes::cipher::consts::U12>,
    aad: &[u8],
    text: &mut [u8],
    tag: &mut [u8],
) -> Result<(), AeadError>
where
    A: AeadInOut<NonceSize = aes::cipher::consts::U12, TagSize = aes::cipher::consts::U16>,
{
    match dir {
        Direction::Encrypt => {
            let t = c
                .encrypt_inout_detached(nonce, aad, text.into())
                .map_err(|_| AeadError::TooShort {
                    len: text.len(),
                    assoclen: aad.len(),
                    tag: " (too long for GCM)".into(),
                })?;
            tag.copy_from_slice(&t);
            Ok(())
        }
        Direction::Decrypt => {
            let t = Tag::<aes::cipher::consts::U16>::try_from(&*tag)
                .map_err(|_| AeadError::BadMessage)?;
            c.decrypt_inout_detached(nonce, aad, text.into(), &t)
                .map_err(|_| AeadError::BadMessage)
        }
    }
}

/// The VAES kernel; on a CPU without it `new` never made a `Fast` key.
#[cfg(target_arch = "x86_64")]
fn fast_parts(
    k: &super::gcm_vaes::GcmKeys,
    dir: Direction,
    nonce: &[u8; 12],
    aad: &[u8],
    text: &mut [u8],
    tag: &mut [u8],
) -> Result<(), AeadError> {
    use super::gcm_vaes::{open, seal};
    let unsupported = || AeadError::Kernel {
        op: "gcm_vaes",
        message: "the CPU lacks the features its keys were made for".into(),
    };
    match dir {
        Direction::Encrypt if seal(k, nonce, aad, text, tag) => Ok(()),
        Direction::Encrypt => Err(unsupported()),
        Direction::Decrypt => match open(k, nonce, aad, text, tag) {
            Some(true) => Ok(()),
            Some(false) => Err(AeadError::BadMessage),
            None => Err(unsupported()),
        },
    }
}
