//! Key material and the primitives that make it: the master key (64 random
//! bytes, zeroized on drop, never printed), one HKDF-SHA256 derivation per
//! purpose, Argon2id over the password, and OS randomness. Knows nothing of
//! files or the config format.

pub mod kdf;

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const MASTER_KEY_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("cannot derive a {0}-byte key with HKDF-SHA256")]
    HkdfLength(usize),
}

/// Fills `buf` from the OS (getrandom(2)).
pub fn random_fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|e| CryptoError::Random(e.to_string()))
}

pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    random_fill(&mut b)?;
    Ok(b)
}

/// Makes this process leave no core dump, so a crash cannot put key
/// material on disk: RLIMIT_CORE 0, and not dumpable (PR_SET_DUMPABLE 0),
/// which also covers a core_pattern pipe such as systemd-coredump and
/// keeps other processes of the same user from ptrace-attaching. Done
/// first thing, before any password or key is read.
pub fn forbid_core_dumps() -> Result<(), String> {
    use rustix::process::{setrlimit, DumpableBehavior, Resource, Rlimit};
    let none = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    setrlimit(Resource::Core, none).map_err(|e| format!("cannot set RLIMIT_CORE to 0: {e}"))?;
    rustix::process::set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| format!("cannot make the process non-dumpable: {e}"))
}

/// Marks the page at `page` MADV_DONTDUMP, so that even a core made in
/// spite of `forbid_core_dumps` (suid_dumpable = 2) leaves the key out.
#[allow(unsafe_code)]
fn exclude_from_core_dumps(page: &KeyPage) {
    let ptr = std::ptr::from_ref(page).cast_mut().cast::<libc::c_void>();
    // SAFETY: `page` is a live, page-aligned allocation of exactly one page
    // (KeyPage is align(4096) and 4096 bytes); MADV_DONTDUMP changes only
    // what a core dump includes, never the memory's contents or mapping.
    let rc = unsafe { libc::madvise(ptr, std::mem::size_of::<KeyPage>(), libc::MADV_DONTDUMP) };
    if rc != 0 {
        log::warn!(
            "cannot exclude the master key from core dumps: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The master key. No `Clone`, no `Debug` output of the bytes. It lives in
/// one heap allocation that never moves (so no stale copies are left behind
/// by moves), locked into RAM so it is never swapped out, and wiped on drop.
pub struct MasterKey {
    // Declared first, so the page is unlocked before the box is freed.
    locked: Option<region::LockGuard>,
    bytes: Box<KeyPage>,
}

/// A page of its own: mlock is not counted, so unlocking one key's page
/// must not unlock another key that happened to share it.
#[repr(C, align(4096))]
struct KeyPage([u8; MASTER_KEY_LEN]);

impl MasterKey {
    fn zeroed() -> Self {
        let bytes = Box::new(KeyPage([0u8; MASTER_KEY_LEN]));
        exclude_from_core_dumps(&bytes);
        let locked = match region::lock(bytes.0.as_ptr(), MASTER_KEY_LEN) {
            Ok(guard) => Some(guard),
            Err(e) => {
                // Non-root users get RLIMIT_MEMLOCK, usually 8 MiB: room
                // enough, so a refusal is unusual and worth a line.
                log::warn!("cannot lock the master key into memory ({e}); it could be swapped out");
                None
            }
        };
        MasterKey { locked, bytes }
    }

    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Self::zeroed();
        random_fill(&mut k.bytes.0)?;
        Ok(k)
    }

    /// Takes the key from `bytes` (which the caller should wipe); `None` if
    /// the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != MASTER_KEY_LEN {
            return None;
        }
        let mut k = Self::zeroed();
        k.bytes.0.copy_from_slice(bytes);
        Some(k)
    }

    /// Whether the key's memory is locked (mlock) against swapping.
    pub fn is_locked(&self) -> bool {
        self.locked.is_some()
    }

    /// Only for wrapping it and for `info --show-masterkey`.
    pub fn expose(&self) -> &[u8; MASTER_KEY_LEN] {
        &self.bytes.0
    }

    /// HKDF-SHA256 with an empty salt and `info` naming the purpose.
    pub fn derive(&self, info: &[&[u8]], len: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let hk = Hkdf::<Sha256>::new(None, &self.bytes.0);
        let info: Vec<u8> = info.concat();
        let mut out = Zeroizing::new(vec![0u8; len]);
        hk.expand(&info, &mut out)
            .map_err(|_| CryptoError::HkdfLength(len))?;
        Ok(out)
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.0.zeroize();
    }
}

impl ZeroizeOnDrop for MasterKey {}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivations_differ_by_purpose_and_never_print() {
        let k = MasterKey::generate().unwrap();
        let a = k.derive(&[b"cipherfs v1 names"], 32).unwrap();
        let b = k.derive(&[b"cipherfs v1 content", &[0u8; 16]], 32).unwrap();
        assert_ne!(*a, *b);
        assert_eq!(*a, *k.derive(&[b"cipherfs v1 names"], 32).unwrap());
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
        assert!(MasterKey::from_bytes(&[0; 63]).is_none());
    }

    #[test]
    fn the_key_is_locked_in_memory_where_the_limit_allows() {
        let k = MasterKey::generate().unwrap();
        let lim = rustix::process::getrlimit(rustix::process::Resource::Memlock);
        // Root may always lock; others within RLIMIT_MEMLOCK, at least a page here.
        if rustix::process::geteuid().is_root() || lim.current.unwrap_or(u64::MAX) >= 65536 {
            assert!(k.is_locked());
        } else {
            eprintln!("SKIP lock check: RLIMIT_MEMLOCK is {:?}", lim.current);
        }
    }

    #[test]
    fn hkdf_matches_rfc5869_test_case_3() {
        // RFC 5869 A.3: SHA-256, empty salt and info, IKM = 22 x 0x0b. Our
        // master key is 64 bytes, so check the primitive the same way it is called.
        let hk = Hkdf::<Sha256>::new(None, &[0x0b; 22]);
        let mut okm = [0u8; 42];
        hk.expand(&[], &mut okm).unwrap();
        assert_eq!(
            hex(&okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
