//! Argon2id over the password, with the parameters stored in the config.
//! A floor refuses parameters edited down to make guessing cheap; a ceiling
//! refuses ones that would exhaust the machine before the password is checked.
//! The ceiling is exactly what `init` can write (`--kdf-memory-mib` up to
//! 4096, `--kdf-iterations` up to 100, one lane), so every cipher directory
//! cipherfs ever made still opens, and a planted config can ask for no more.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::CryptoError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    /// About 64 MiB and 3 passes: ~0.3 s here, the strength gocryptfs users expect.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    /// The least a config may carry (for tests, set with `init --kdf-memory-mib 1`).
    pub const FLOOR: KdfParams = KdfParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };
    pub const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    pub const MAX_ITERATIONS: u32 = 100;
    /// `init` has only ever used one lane.
    pub const MAX_PARALLELISM: u32 = 1;

    /// Why these parameters may not be used, if they may not.
    pub fn check(&self) -> Result<(), String> {
        let f = Self::FLOOR;
        if self.memory_kib < f.memory_kib
            || self.iterations < f.iterations
            || self.parallelism < f.parallelism
        {
            return Err(format!(
                "Argon2id parameters m={} KiB t={} p={} are below the floor m={} KiB t={} p={}: \
                 a config edited to make password guessing cheap is refused",
                self.memory_kib,
                self.iterations,
                self.parallelism,
                f.memory_kib,
                f.iterations,
                f.parallelism
            ));
        }
        if self.memory_kib > Self::MAX_MEMORY_KIB
            || self.iterations > Self::MAX_ITERATIONS
            || self.parallelism > Self::MAX_PARALLELISM
        {
            return Err(format!(
                "Argon2id parameters m={} KiB t={} p={} exceed the maximum m={} KiB t={} p={}",
                self.memory_kib,
                self.iterations,
                self.parallelism,
                Self::MAX_MEMORY_KIB,
                Self::MAX_ITERATIONS,
                Self::MAX_PARALLELISM
            ));
        }
        Ok(())
    }

    /// Derives a 32-byte key from `password` and `salt`.
    pub fn derive(&self, password: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        self.check().map_err(CryptoError::Kdf)?;
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| CryptoError::Kdf(e.to_string()))?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(password, salt, out.as_mut())
            .map_err(|e| CryptoError::Kdf(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_and_ceiling() {
        assert!(KdfParams::DEFAULT.check().is_ok());
        assert!(KdfParams::FLOOR.check().is_ok());
        let cheap = KdfParams {
            memory_kib: 8,
            ..KdfParams::FLOOR
        };
        assert!(cheap.check().unwrap_err().contains("below the floor"));
        let huge = KdfParams {
            iterations: 1000,
            ..KdfParams::DEFAULT
        };
        assert!(huge.check().unwrap_err().contains("exceed the maximum"));
        let lanes = KdfParams {
            parallelism: 2,
            ..KdfParams::FLOOR
        };
        assert!(lanes.check().unwrap_err().contains("exceed the maximum"));
        let most = KdfParams {
            memory_kib: KdfParams::MAX_MEMORY_KIB,
            iterations: KdfParams::MAX_ITERATIONS,
            parallelism: 1,
        };
        assert!(most.check().is_ok());
        assert!(cheap.derive(b"pw", &[0; 16]).is_err());
    }

    #[test]
    fn same_inputs_same_key_different_salt_different_key() {
        let p = KdfParams::FLOOR;
        let a = p.derive(b"correct horse", &[1; 16]).unwrap();
        assert_eq!(*a, *p.derive(b"correct horse", &[1; 16]).unwrap());
        assert_ne!(*a, *p.derive(b"correct horse", &[2; 16]).unwrap());
        assert_ne!(*a, *p.derive(b"correct horsf", &[1; 16]).unwrap());
    }
}
