//! AES with its key size chosen at run time. The `aes` crate zeroizes each key
//! schedule on drop (feature `zeroize`), so dropping an `AesKey` wipes it.

use aes::cipher::KeyInit;
use aes::{Aes128, Aes192, Aes256};

use crate::skcipher::SkcipherError;

pub enum AesKey {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

impl AesKey {
    /// `key` is 16, 24 or 32 bytes (the algorithm table checks it first;
    /// anything else is an error here too, never a panic).
    pub fn new(key: &[u8]) -> Result<Self, SkcipherError> {
        let bad = || SkcipherError::BadKeyLength {
            alg: "aes",
            len: key.len(),
            allowed: &[16, 24, 32],
        };
        Ok(match key.len() {
            16 => Self::A128(Aes128::new_from_slice(key).map_err(|_| bad())?),
            24 => Self::A192(Aes192::new_from_slice(key).map_err(|_| bad())?),
            _ => Self::A256(Aes256::new_from_slice(key).map_err(|_| bad())?),
        })
    }
}

/// Runs `$body` with `$c` bound to the concrete cipher, so generic mode code is
/// monomorphised per key size instead of dispatching per block.
macro_rules! with_aes {
    ($key:expr, $c:ident => $body:expr) => {
        match $key {
            $crate::skcipher::soft::aes_any::AesKey::A128($c) => $body,
            $crate::skcipher::soft::aes_any::AesKey::A192($c) => $body,
            $crate::skcipher::soft::aes_any::AesKey::A256($c) => $body,
        }
    };
}
pub(crate) use with_aes;
