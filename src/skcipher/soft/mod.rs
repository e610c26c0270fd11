//! The in-process backend: RustCrypto `aes` (AES-NI/VAES detected at run time,
//! a constant-time bitsliced fallback otherwise) under our own mode code, and
//! `polyval` for HCTR2's hash.

pub(crate) mod aes_any;
mod cbc;
mod hctr2;
mod xts;
#[cfg(target_arch = "x86_64")]
pub(crate) mod xts_vaes;

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use aes::Aes256;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::alg::{AlgInfo, Mode};
use super::backend::{Direction, KeyedCipher};
use super::error::SkcipherError;
use aes_any::{with_aes, AesKey};

/// A keyed soft instance. Every field is a key schedule that wipes itself on drop.
// One exists per handle, behind an Arc; boxing the large variant would only add
// a pointer chase to every request.
#[allow(clippy::large_enum_variant)]
pub enum SoftCipher {
    Xts {
        data: AesKey,
        tweak: AesKey,
        /// The VAES/AVX-512 path's schedules, when this CPU can run it.
        #[cfg(target_arch = "x86_64")]
        fast: Option<Box<xts_vaes::XtsKeys>>,
    },
    Cbc(AesKey),
    Ecb(AesKey),
    Cts(AesKey),
    Essiv {
        data: AesKey,
        salt: Box<Aes256>,
    },
    Hctr2(Box<hctr2::Hctr2Keys>),
}

impl SoftCipher {
    /// `key` has passed `AlgInfo::check_key`.
    pub fn new(alg: &AlgInfo, key: &[u8]) -> Result<Self, SkcipherError> {
        Self::build(alg, key, true)
    }

    /// The same cipher without the CPU-specific XTS path, so tests can hold
    /// the portable path to the same reference on machines that have both.
    #[doc(hidden)]
    pub fn new_portable(alg: &AlgInfo, key: &[u8]) -> Result<Self, SkcipherError> {
        Self::build(alg, key, false)
    }

    /// Whether XTS on this instance runs the VAES/AVX-512 path.
    pub fn xts_fast_path(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if let Self::Xts { fast: Some(_), .. } = self {
            return true;
        }
        false
    }

    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
    fn build(alg: &AlgInfo, key: &[u8], allow_fast: bool) -> Result<Self, SkcipherError> {
        Ok(match alg.mode {
            Mode::Xts => {
                let (k1, k2) = key.split_at(key.len() / 2);
                Self::Xts {
                    data: AesKey::new(k1)?,
                    tweak: AesKey::new(k2)?,
                    #[cfg(target_arch = "x86_64")]
                    fast: if allow_fast {
                        xts_vaes::new_keys(key)
                    } else {
                        None
                    },
                }
            }
            Mode::Cbc => Self::Cbc(AesKey::new(key)?),
            Mode::Ecb => Self::Ecb(AesKey::new(key)?),
            Mode::CtsCbc => Self::Cts(AesKey::new(key)?),
            Mode::Hctr2 => Self::Hctr2(Box::new(hctr2::Hctr2Keys::new(key)?)),
            Mode::EssivCbc => {
                let salt = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(key)));
                let salt_cipher = Aes256::new(&(*salt).into());
                Self::Essiv {
                    data: AesKey::new(key)?,
                    salt: Box::new(salt_cipher),
                }
            }
        })
    }

    pub fn hardware_accelerated() -> bool {
        aes::hardware_accelerated()
    }
}

fn ecb<C>(c: &C, dir: Direction, buf: &mut [u8])
where
    C: BlockCipherEncrypt
        + BlockCipherDecrypt
        + aes::cipher::BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    let (blocks, _) = aes::Block::slice_as_chunks_mut(buf);
    match dir {
        Direction::Encrypt => c.encrypt_blocks(blocks),
        Direction::Decrypt => c.decrypt_blocks(blocks),
    }
}

/// XTS for every key-size pairing, monomorphised so no per-block dispatch remains.
fn xts_dispatch(
    data: &AesKey,
    tweak: &AesKey,
    dir: Direction,
    iv: &[u8],
    buf: &mut [u8],
) -> Result<(), SkcipherError> {
    match dir {
        Direction::Encrypt => {
            with_aes!(data, d => with_aes!(tweak, t => xts::encrypt(d, t, iv, buf)))
        }
        Direction::Decrypt => {
            with_aes!(data, d => with_aes!(tweak, t => xts::decrypt(d, t, iv, buf)))
        }
    }
}

impl KeyedCipher for SoftCipher {
    fn crypt_in_place(
        &self,
        dir: Direction,
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<(), SkcipherError> {
        use Direction::{Decrypt, Encrypt};
        match (self, dir) {
            #[cfg(target_arch = "x86_64")]
            (
                Self::Xts {
                    fast: Some(fast), ..
                },
                dir,
            ) if xts_vaes::run(fast, dir == Encrypt, iv, buf) => Ok(()),
            (Self::Xts { data, tweak, .. }, dir) => xts_dispatch(data, tweak, dir, iv, buf),
            (Self::Cbc(k), Encrypt) => with_aes!(k, c => cbc::cbc_encrypt(c, iv, buf)),
            (Self::Cbc(k), Decrypt) => with_aes!(k, c => cbc::cbc_decrypt(c, iv, buf)),
            (Self::Ecb(k), dir) => {
                with_aes!(k, c => ecb(c, dir, buf));
                Ok(())
            }
            (Self::Cts(k), Encrypt) => with_aes!(k, c => cbc::cts_encrypt(c, iv, buf)),
            (Self::Cts(k), Decrypt) => with_aes!(k, c => cbc::cts_decrypt(c, iv, buf)),
            (Self::Hctr2(k), dir) => k.crypt(dir, iv, buf),
            (Self::Essiv { data, salt }, dir) => {
                let real_iv = cbc::essiv_iv(salt.as_ref(), iv)?;
                match dir {
                    Encrypt => with_aes!(data, c => cbc::cbc_encrypt(c, &real_iv, buf)),
                    Decrypt => with_aes!(data, c => cbc::cbc_decrypt(c, &real_iv, buf)),
                }
            }
        }
    }

    fn driver(&self) -> String {
        let engine = if self.xts_fast_path() {
            "VAES/AVX-512 XTS"
        } else if aes::hardware_accelerated() {
            "hardware AES: AES-NI, VAES where present"
        } else {
            "bitsliced software AES"
        };
        format!("cipherfs soft ({engine})")
    }
}
