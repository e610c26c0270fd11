//! AES with its key size chosen at run time. The `aes` crate zeroizes each key
//! schedule on drop (feature `zeroize`), so dropping an `AesKey` wipes it.
//! Each schedule has a heap allocation of exactly its own size: inline in an
//! enum, a smaller variant left the rest of the enum's bytes as they were on
//! the stack when it was moved to the heap, and those bytes held an earlier
//! copy of a schedule that no drop ever wiped (found by tests/admin/zeroize.rs).

use aes::cipher::KeyInit;
use aes::{Aes128, Aes192, Aes256};

use crate::skcipher::SkcipherError;

pub enum AesKey {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
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
            16 => Self::A128(Box::new(Aes128::new_from_slice(key).map_err(|_| bad())?)),
            24 => Self::A192(Box::new(Aes192::new_from_slice(key).map_err(|_| bad())?)),
            _ => Self::A256(Box::new(Aes256::new_from_slice(key).map_err(|_| bad())?)),
        })
    }
}

/// Runs `$body` with `$c` bound to the concrete cipher, so generic mode code is
/// monomorphised per key size instead of dispatching per block.
macro_rules! with_aes {
    ($key:expr, $c:ident => $body:expr) => {
        match $key {
            $crate::skcipher::soft::aes_any::AesKey::A128(k) => {
                let $c: &aes::Aes128 = k;
                $body
            }
            $crate::skcipher::soft::aes_any::AesKey::A192(k) => {
                let $c: &aes::Aes192 = k;
                $body
            }
            $crate::skcipher::soft::aes_any::AesKey::A256(k) => {
                let $c: &aes::Aes256 = k;
                $body
            }
        }
    };
}
pub(crate) use with_aes;
