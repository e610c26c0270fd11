//! Errors of the skcipher layer. Each variant says which constraint was broken,
//! in the words a user can act on; none ever carries key bytes.

use std::io;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SkcipherError {
    #[error("unknown algorithm {name:?}; known algorithms: {known}")]
    UnknownAlgorithm { name: String, known: String },

    #[error("{alg}: a key of {len} bytes is invalid; allowed key lengths are {allowed:?} bytes")]
    BadKeyLength {
        alg: &'static str,
        len: usize,
        allowed: &'static [usize],
    },

    #[error(
        "xts(aes): the two key halves are equal, which XTS forbids (the kernel's xts_verify_key)"
    )]
    XtsEqualHalves,

    #[error("no key is set on this handle (setkey was never called, or the last setkey failed)")]
    NoKey,

    #[error("{alg}: an IV of {len} bytes is invalid; this algorithm takes {expected} bytes")]
    BadIvLength {
        alg: &'static str,
        len: usize,
        expected: usize,
    },

    #[error("{alg}: data length {len} is not a multiple of the {blocksize}-byte block size")]
    LengthNotBlockMultiple {
        alg: &'static str,
        len: usize,
        blocksize: usize,
    },

    #[error("{alg}: data length {len} is shorter than the minimum of {min} bytes")]
    LengthTooShort {
        alg: &'static str,
        len: usize,
        min: usize,
    },

    #[error("source is {src} bytes but destination is {dst} bytes; they must be equal")]
    BufferMismatch { src: usize, dst: usize },

    #[error("the {backend} backend handles at most {max} bytes per request; this one has {len}")]
    RequestTooLarge {
        backend: &'static str,
        len: usize,
        max: usize,
    },

    #[error("this kernel has no AF_ALG skcipher interface (CONFIG_CRYPTO_USER_API_SKCIPHER); use the soft backend")]
    AfAlgUnsupported,

    #[error("the kernel has no {name} (bind to AF_ALG skcipher {name:?} failed with ENOENT)")]
    KernelLacksAlgorithm { name: String },

    #[error("the kernel refused the {what} for {alg} with EINVAL: {constraint}")]
    KernelRejected {
        alg: &'static str,
        what: &'static str,
        constraint: String,
    },

    #[error("AF_ALG {op} failed: {source}")]
    Kernel {
        op: &'static str,
        #[source]
        source: io::Error,
    },

    #[error("AF_ALG {op} returned {got} bytes where {expected} were expected")]
    ShortTransfer {
        op: &'static str,
        got: usize,
        expected: usize,
    },

    #[error("the {backend} backend failed its known-answer self-test for {alg}: {detail}")]
    SelfTestFailed {
        backend: &'static str,
        alg: &'static str,
        detail: String,
    },

    #[error("the request was cancelled before it ran (the async engine shut down or the worker panicked)")]
    Cancelled,
}

impl SkcipherError {
    /// The errno the kernel would have returned, for the filesystem layer above.
    pub fn errno(&self) -> i32 {
        match self {
            Self::UnknownAlgorithm { .. } | Self::KernelLacksAlgorithm { .. } => libc::ENOENT,
            Self::NoKey => libc::ENOKEY,
            Self::AfAlgUnsupported => libc::EAFNOSUPPORT,
            Self::Kernel { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Self::ShortTransfer { .. } | Self::SelfTestFailed { .. } | Self::Cancelled => libc::EIO,
            _ => libc::EINVAL,
        }
    }
}
