//! The kernel backend: the running kernel's crypto API through AF_ALG sockets
//! (`crypto/algif_skcipher.c`). setkey binds a fresh transform socket and sets
//! the key on it; each request runs on an operation socket taken from a pool,
//! so parallel requests never queue behind one socket.

pub mod proc_crypto;
#[allow(unsafe_code)]
pub(crate) mod sys;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use super::alg::{AlgInfo, LenRule};
use super::backend::{Direction, KeyedCipher};
use super::error::SkcipherError;

/// The most one request may carry. A request must be sent whole before its
/// result is read (XTS and CTS cannot be split across kernel requests), and
/// the kernel holds what was sent in the socket's send buffer (about 208 KiB
/// by default): 64 KiB stays well inside it.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Data per sendmsg. Requests larger than this go out as several buffers
/// joined by MSG_MORE, which the kernel gathers into one cipher request; the
/// size keeps each call's page pinning small (the kernel pins 16 pages per
/// scatterlist at most).
pub const SEND_CHUNK: usize = 4 * 4096;

/// Operation sockets kept for reuse; beyond this they are closed after use.
const POOL_MAX: usize = 64;

fn socket_error(op: &'static str, e: io::Error) -> SkcipherError {
    match e.raw_os_error() {
        Some(libc::EAFNOSUPPORT) => SkcipherError::AfAlgUnsupported,
        Some(libc::ENOKEY) => SkcipherError::NoKey,
        _ => SkcipherError::Kernel { op, source: e },
    }
}

fn open_bound(name: &str) -> Result<OwnedFd, SkcipherError> {
    bound("skcipher", name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => SkcipherError::KernelLacksAlgorithm {
            name: name.to_string(),
        },
        _ => socket_error("bind", e),
    })
}

/// Whether the running kernel offers `name` through AF_ALG.
pub fn probe(name: &str) -> Result<(), SkcipherError> {
    open_bound(name).map(drop)
}

fn constraint(alg: &AlgInfo, len: usize) -> String {
    match alg.len_rule {
        LenRule::BlockMultiple => format!(
            "the length must be a multiple of {} bytes (this request: {len} bytes, IV {} bytes)",
            alg.blocksize, alg.ivsize
        ),
        LenRule::AtLeastOneBlock => format!(
            "the length must be at least {} bytes (this request: {len} bytes, IV {} bytes)",
            alg.blocksize, alg.ivsize
        ),
    }
}

/// Why sending a request failed.
pub(crate) enum SendError {
    Io(io::Error),
    Short { got: usize, expected: usize },
}

/// Sends one whole request on an operation socket: the control messages
/// with its first buffer, then the rest in SEND_CHUNK pieces joined by
/// MSG_MORE. `assoclen` is set for AEAD requests.
pub(crate) fn send_request(
    sock: &OwnedFd,
    dir: Direction,
    iv: &[u8],
    assoclen: Option<u32>,
    src: &[u8],
) -> Result<(), SendError> {
    let op = match dir {
        Direction::Encrypt => libc::ALG_OP_ENCRYPT,
        Direction::Decrypt => libc::ALG_OP_DECRYPT,
    } as u32;
    let mut first = true;
    let mut chunks = src.chunks(SEND_CHUNK).peekable();
    // An empty request (AEAD: no text, no associated data) is still one message.
    if src.is_empty() {
        let start = sys::Start { op, iv, assoclen };
        sys::send(sock, Some(start), &[], false).map_err(SendError::Io)?;
        return Ok(());
    }
    while let Some(chunk) = chunks.next() {
        let more = chunks.peek().is_some();
        let start = first.then_some(sys::Start { op, iv, assoclen });
        first = false;
        let sent = sys::send(sock, start, chunk, more).map_err(SendError::Io)?;
        if sent != chunk.len() {
            return Err(SendError::Short {
                got: sent,
                expected: chunk.len(),
            });
        }
    }
    Ok(())
}

/// A bound, keyed transform socket and the operation sockets accepted on
/// it, kept for reuse so parallel requests never queue behind one socket.
/// Closing the transform socket makes the kernel free (and wipe) its copy of
/// the key. Shared with the aead layer's afalg backend.
pub(crate) struct OpPool {
    tfm: OwnedFd,
    ops: Mutex<Vec<OwnedFd>>,
}

impl OpPool {
    pub(crate) fn new(tfm: OwnedFd) -> Self {
        Self {
            tfm,
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on an operation socket. The socket goes back to the pool
    /// only if `f` succeeded: a failed request may leave data unread on it.
    pub(crate) fn with<E>(
        &self,
        accept_error: impl FnOnce(io::Error) -> E,
        f: impl FnOnce(&OwnedFd) -> Result<(), E>,
    ) -> Result<(), E> {
        let pooled = self.ops.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let sock = match pooled {
            Some(op) => op,
            None => sys::accept_op(&self.tfm).map_err(accept_error)?,
        };
        let res = f(&sock);
        if res.is_ok() {
            let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
            if ops.len() < POOL_MAX {
                ops.push(sock);
            }
        }
        res
    }
}

/// `socket` and `bind` to `{salg_type, name}`.
pub(crate) fn bound(salg_type: &str, name: &str) -> io::Result<OwnedFd> {
    let sock = sys::alg_socket()?;
    sys::bind(&sock, salg_type, name)?;
    Ok(sock)
}

pub struct AfalgCipher {
    alg: &'static AlgInfo,
    pool: OpPool,
}

impl AfalgCipher {
    pub fn new(alg: &'static AlgInfo, key: &[u8]) -> Result<Self, SkcipherError> {
        let tfm = open_bound(alg.name)?;
        sys::set_key(&tfm, key).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => SkcipherError::KernelRejected {
                alg: alg.name,
                what: "key",
                constraint: format!(
                    "key lengths {:?} bytes{} (a kernel in FIPS mode also refuses weak keys)",
                    alg.key_sizes,
                    if alg.name.starts_with("xts") {
                        " with distinct halves"
                    } else {
                        ""
                    }
                ),
            },
            _ => socket_error("setsockopt(ALG_SET_KEY)", e),
        })?;
        Ok(Self {
            alg,
            pool: OpPool::new(tfm),
        })
    }

    fn map_io(&self, op: &'static str, len: usize, e: io::Error) -> SkcipherError {
        if e.raw_os_error() == Some(libc::EINVAL) {
            SkcipherError::KernelRejected {
                alg: self.alg.name,
                what: "data",
                constraint: constraint(self.alg, len),
            }
        } else {
            socket_error(op, e)
        }
    }

    /// One request on one operation socket: send it whole, then read it whole.
    fn run(
        &self,
        sock: &OwnedFd,
        dir: Direction,
        iv: &[u8],
        src: &[u8],
    ) -> Result<(), SkcipherError> {
        send_request(sock, dir, iv, None, src).map_err(|e| match e {
            SendError::Io(e) => self.map_io("sendmsg", src.len(), e),
            SendError::Short { got, expected } => SkcipherError::ShortTransfer {
                op: "sendmsg",
                got,
                expected,
            },
        })
    }

    fn finish(&self, sock: &OwnedFd, dst: &mut [u8]) -> Result<(), SkcipherError> {
        // The kernel cuts its output to whole blocks when the buffer is short;
        // ours is always the request's full length, so anything less means the
        // socket is in a state we cannot continue from (the caller drops it).
        let got = sys::recv(sock, dst).map_err(|e| self.map_io("recv", dst.len(), e))?;
        if got != dst.len() {
            return Err(SkcipherError::ShortTransfer {
                op: "recv",
                got,
                expected: dst.len(),
            });
        }
        Ok(())
    }

    fn with_op(
        &self,
        len: usize,
        f: impl FnOnce(&OwnedFd) -> Result<(), SkcipherError>,
    ) -> Result<(), SkcipherError> {
        if len > MAX_REQUEST {
            return Err(SkcipherError::RequestTooLarge {
                backend: "afalg",
                len,
                max: MAX_REQUEST,
            });
        }
        if len == 0 {
            return Ok(());
        }
        self.pool.with(|e| socket_error("accept", e), f)
    }
}

impl KeyedCipher for AfalgCipher {
    fn crypt_in_place(
        &self,
        dir: Direction,
        iv: &[u8],
        buf: &mut [u8],
    ) -> Result<(), SkcipherError> {
        self.with_op(buf.len(), |sock| {
            self.run(sock, dir, iv, buf)?;
            self.finish(sock, buf)
        })
    }

    fn crypt(
        &self,
        dir: Direction,
        iv: &[u8],
        src: &[u8],
        dst: &mut [u8],
    ) -> Result<(), SkcipherError> {
        self.with_op(src.len(), |sock| {
            self.run(sock, dir, iv, src)?;
            self.finish(sock, dst)
        })
    }

    fn driver(&self) -> String {
        match proc_crypto::driver_for(self.alg.name) {
            Some(e) => format!(
                "kernel {} (module {}, priority {})",
                e.driver, e.module, e.priority
            ),
            None => "kernel (driver not listed in /proc/crypto)".to_string(),
        }
    }
}
