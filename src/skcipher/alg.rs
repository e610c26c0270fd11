//! The table of algorithms the skcipher layer knows, as data (the fscrypt habit):
//! kernel name, IV size, block size, accepted key sizes and length constraints.
//! Owns the validation every request passes before any backend sees it, so the
//! soft and kernel backends refuse exactly the same inputs with the same words.

use super::error::SkcipherError;

/// Which construction an algorithm name denotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Xts,
    Cbc,
    Ecb,
    CtsCbc,
    EssivCbc,
    Hctr2,
}

/// How the data length of one request is constrained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenRule {
    /// Any length that is a multiple of the block size (zero included).
    BlockMultiple,
    /// Any length of at least one block: the tail is handled by ciphertext
    /// stealing (XTS, CTS), or by the mode itself (HCTR2).
    AtLeastOneBlock,
}

/// Static description of one algorithm, as `/proc/crypto` would show it.
#[derive(Debug)]
pub struct AlgInfo {
    pub name: &'static str,
    pub mode: Mode,
    pub ivsize: usize,
    pub blocksize: usize,
    pub key_sizes: &'static [usize],
    pub len_rule: LenRule,
}

pub const AES_BLOCK: usize = 16;

pub static ALGORITHMS: &[AlgInfo] = &[
    AlgInfo {
        name: "xts(aes)",
        mode: Mode::Xts,
        ivsize: 16,
        blocksize: AES_BLOCK,
        // IEEE 1619 defines XTS-AES-128 and XTS-AES-256 only.
        key_sizes: &[32, 64],
        len_rule: LenRule::AtLeastOneBlock,
    },
    AlgInfo {
        name: "cbc(aes)",
        mode: Mode::Cbc,
        ivsize: 16,
        blocksize: AES_BLOCK,
        key_sizes: &[16, 24, 32],
        len_rule: LenRule::BlockMultiple,
    },
    AlgInfo {
        name: "ecb(aes)",
        mode: Mode::Ecb,
        ivsize: 0,
        blocksize: AES_BLOCK,
        key_sizes: &[16, 24, 32],
        len_rule: LenRule::BlockMultiple,
    },
    AlgInfo {
        name: "cts(cbc(aes))",
        mode: Mode::CtsCbc,
        ivsize: 16,
        blocksize: AES_BLOCK,
        key_sizes: &[16, 24, 32],
        len_rule: LenRule::AtLeastOneBlock,
    },
    AlgInfo {
        name: "essiv(cbc(aes),sha256)",
        mode: Mode::EssivCbc,
        ivsize: 16,
        blocksize: AES_BLOCK,
        key_sizes: &[16, 24, 32],
        len_rule: LenRule::BlockMultiple,
    },
    AlgInfo {
        name: "hctr2(aes)",
        mode: Mode::Hctr2,
        // The kernel's tweak is two POLYVAL blocks (crypto/hctr2.c, TWEAK_SIZE).
        ivsize: 32,
        blocksize: AES_BLOCK,
        key_sizes: &[16, 24, 32],
        len_rule: LenRule::AtLeastOneBlock,
    },
];

/// Looks an algorithm up by its kernel name.
pub fn lookup(name: &str) -> Result<&'static AlgInfo, SkcipherError> {
    ALGORITHMS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| SkcipherError::UnknownAlgorithm {
            name: name.to_string(),
            known: ALGORITHMS
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl AlgInfo {
    /// The kernel's setkey checks: length, and for XTS distinct halves
    /// (`xts_verify_key`), which the kernel enforces in FIPS mode and we always do.
    pub fn check_key(&self, key: &[u8]) -> Result<(), SkcipherError> {
        if !self.key_sizes.contains(&key.len()) {
            return Err(SkcipherError::BadKeyLength {
                alg: self.name,
                len: key.len(),
                allowed: self.key_sizes,
            });
        }
        if self.mode == Mode::Xts {
            let (k1, k2) = key.split_at(key.len() / 2);
            if constant_time_eq(k1, k2) {
                return Err(SkcipherError::XtsEqualHalves);
            }
        }
        Ok(())
    }

    pub fn check_iv(&self, iv: &[u8]) -> Result<(), SkcipherError> {
        if iv.len() != self.ivsize {
            return Err(SkcipherError::BadIvLength {
                alg: self.name,
                len: iv.len(),
                expected: self.ivsize,
            });
        }
        Ok(())
    }

    pub fn check_len(&self, len: usize) -> Result<(), SkcipherError> {
        match self.len_rule {
            LenRule::BlockMultiple if !len.is_multiple_of(self.blocksize) => {
                Err(SkcipherError::LengthNotBlockMultiple {
                    alg: self.name,
                    len,
                    blocksize: self.blocksize,
                })
            }
            LenRule::AtLeastOneBlock if len < self.blocksize => {
                Err(SkcipherError::LengthTooShort {
                    alg: self.name,
                    len,
                    min: self.blocksize,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Compares without an early exit, so the check does not leak where keys differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_holds_the_longest_iv() {
        for a in ALGORITHMS {
            assert!(a.ivsize <= super::super::MAX_IV, "{}", a.name);
        }
    }

    #[test]
    fn every_name_resolves_and_unknown_is_an_error() {
        for a in ALGORITHMS {
            assert_eq!(lookup(a.name).unwrap().name, a.name);
        }
        let e = lookup("xts(serpent)").unwrap_err().to_string();
        assert!(e.contains("xts(serpent)") && e.contains("cbc(aes)"), "{e}");
    }

    #[test]
    fn length_rules() {
        let xts = lookup("xts(aes)").unwrap();
        assert!(xts.check_len(15).is_err());
        assert!(xts.check_len(0).is_err());
        assert!(xts.check_len(17).is_ok());
        let cbc = lookup("cbc(aes)").unwrap();
        assert!(cbc.check_len(0).is_ok());
        assert!(cbc.check_len(33).is_err());
    }
}
