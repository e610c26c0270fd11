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
        let mut out = Zeroizing::new(vec![0u8; len]);
        let r = hkdf_into(None, Some(&self.bytes.0), &info.concat(), &mut out);
        // HKDF leaves its pseudorandom key in the frames it returned from.
        wipe_stack();
        r.map(|()| out)
    }
}

impl MasterKey {
    /// The master key's HKDF pseudorandom key (the Extract step, once), for
    /// a purpose that derives many keys, as format 2 derives a names key per
    /// directory. `expander().derive(info)` equals `derive(info)`.
    pub fn expander(&self) -> KeyExpander {
        // Written in place on the heap: a value moved around would leave
        // copies in the frames it passed through.
        let mut prk = Box::new(Zeroizing::new([0u8; 32]));
        extract_into(&self.bytes.0, &mut prk);
        wipe_stack();
        KeyExpander(prk)
    }
}

/// HKDF-SHA256 Expand from the master key's PRK; wiped on drop.
pub struct KeyExpander(Box<Zeroizing<[u8; 32]>>);

impl KeyExpander {
    pub fn derive(&self, info: &[&[u8]], len: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut out = Zeroizing::new(vec![0u8; len]);
        let r = hkdf_into(Some(&**self.0), None, &info.concat(), &mut out);
        wipe_stack();
        r.map(|()| out)
    }
}

/// HKDF-SHA256 Expand into `out`, from a pseudorandom key or from input key
/// material (Extract first, empty salt). Not inlined, so that its frames lie
/// below the caller's and the caller's `wipe_stack` reaches them.
#[inline(never)]
fn hkdf_into(
    prk: Option<&[u8]>,
    ikm: Option<&[u8]>,
    info: &[u8],
    out: &mut [u8],
) -> Result<(), CryptoError> {
    let hk = match (prk, ikm) {
        (Some(prk), _) => Hkdf::<Sha256>::from_prk(prk).map_err(|_| CryptoError::HkdfLength(32))?,
        (None, Some(ikm)) => Hkdf::<Sha256>::new(None, ikm),
        (None, None) => return Err(CryptoError::HkdfLength(0)),
    };
    hk.expand(info, out)
        .map_err(|_| CryptoError::HkdfLength(out.len()))
}

/// HKDF-SHA256 Extract of `ikm` (empty salt) into `prk`.
#[inline(never)]
fn extract_into(ikm: &[u8], prk: &mut [u8; 32]) {
    let (mut out, _) = Hkdf::<Sha256>::extract(None, ikm);
    prk.copy_from_slice(&out);
    out.as_mut_slice().zeroize();
}

impl fmt::Debug for KeyExpander {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyExpander(<redacted>)")
    }
}

/// Key setup and cipher calls leave copies of the key or of its round keys
/// in stack frames that have returned: a move in Rust copies and never
/// wipes, the key derivation that comes just before works in the same
/// frames, and AES code spills round keys. Overwriting the stack below the
/// caller removes them, as libsodium's `sodium_stackzero` does. 16 KiB
/// covers the deepest key setup (tests/admin/zeroize.rs finds what is left); a
/// plain fill kept alive by `black_box` costs well under a microsecond.
#[inline(never)]
pub fn wipe_stack() {
    wipe::<{ 16 * 1024 }>();
}

/// The same after a single cipher call on a name, a target or an xattr;
/// it runs for every name in a directory listing. As deep as `wipe_stack`:
/// AES with VAES keeps round keys broadcast four times in wide registers,
/// spilled to frames more than 4 KiB down (tests/admin/zeroize.rs found a
/// names key there after HCTR2, which makes one AES call per block).
#[inline(never)]
pub fn wipe_stack_after_call() {
    wipe::<{ 16 * 1024 }>();
}

/// Runs `wipe_stack_after_call` when dropped, so a loop of cipher calls
/// that may end early (`?`) wipes once at whatever exit it takes.
pub struct WipeStackOnDrop;

impl Drop for WipeStackOnDrop {
    fn drop(&mut self) {
        wipe_stack_after_call();
    }
}

#[inline(always)]
fn wipe<const N: usize>() {
    let mut buf = [0u8; N];
    std::hint::black_box(&mut buf);
    buf.fill(0);
    std::hint::black_box(&mut buf);
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
    fn the_expander_derives_what_derive_does() {
        let k = MasterKey::generate().unwrap();
        let e = k.expander();
        for info in [&b"cipherfs v2 names"[..], b"x", b""] {
            assert_eq!(
                *e.derive(&[info, &[7u8; 16]], 32).unwrap(),
                *k.derive(&[info, &[7u8; 16]], 32).unwrap()
            );
        }
        assert_eq!(format!("{e:?}"), "KeyExpander(<redacted>)");
    }

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
