//! What a backend provides: a keyed instance that transforms data. The handle
//! above it owns validation, key life cycle and the async machinery.

use std::fmt;
use std::str::FromStr;

use super::error::SkcipherError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Encrypt,
    Decrypt,
}

/// A concrete backend. `auto` is resolved to one of these by [`super::select`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// In-process RustCrypto AES.
    Soft,
    /// The running kernel's crypto API through AF_ALG sockets.
    Afalg,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Soft, Backend::Afalg];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Soft => "soft",
            Backend::Afalg => "afalg",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the user asks for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    Soft,
    Afalg,
    Auto,
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "soft" => Ok(Self::Soft),
            "afalg" => Ok(Self::Afalg),
            "auto" => Ok(Self::Auto),
            _ => Err(format!("unknown backend {s:?}; choose soft, afalg or auto")),
        }
    }
}

/// A keyed transform. Implementations must be safe to call from many threads
/// at once: the kernel's contract that encrypt/decrypt never mutate the tfm.
pub trait KeyedCipher: Send + Sync {
    /// Transforms `buf` in place. Lengths and IV sizes were checked by the caller.
    fn crypt_in_place(
        &self,
        dir: Direction,
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<(), SkcipherError>;

    /// Transforms `src` into `dst` (equal lengths, checked by the caller).
    fn crypt(
        &self,
        dir: Direction,
        iv: &[u8],
        src: &[u8],
        dst: &mut [u8],
    ) -> Result<(), SkcipherError> {
        dst.copy_from_slice(src);
        self.crypt_in_place(dir, iv, dst)
    }

    /// Human-readable name of what does the work (for `/proc/crypto`-style reports).
    fn driver(&self) -> String;
}
