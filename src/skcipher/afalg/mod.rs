//! The kernel backend: the running kernel's crypto API through AF_ALG sockets
//! (`crypto/algif_skcipher.c`). setkey binds a fresh transform socket and sets
//! the key on it; each request runs on an operation socket taken from a pool,
//! so parallel requests never queue behind one socket.

pub mod proc_crypto;
#[allow(unsafe_code)]
mod sys;

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
    let sock = sys::alg_socket().map_err(|e| socket_error("socket", e))?;
    sys::bind(&sock, "skcipher", name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => SkcipherError::KernelLacksAlgorithm {
            name: name.to_string(),
        },
        _ => socket_error("bind", e),
    })?;
    Ok(sock)
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

pub struct AfalgCipher {
    alg: &'static AlgInfo,
    /// The bound, keyed transform socket; closing it makes the kernel free
    /// (and wipe) its copy of the key.
    tfm: OwnedFd,
    ops: Mutex<Vec<OwnedFd>>,
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
            tfm,
            ops: Mutex::new(Vec::new()),
        })
    }

    fn take_op(&self) -> Result<OwnedFd, SkcipherError> {
        let pooled = self.ops.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(op) => Ok(op),
            None => sys::accept_op(&self.tfm).map_err(|e| socket_error("accept", e)),
        }
    }

    fn give_back(&self, op: OwnedFd) {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        if ops.len() < POOL_MAX {
            ops.push(op);
        }
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
        let op = match dir {
            Direction::Encrypt => libc::ALG_OP_ENCRYPT,
            Direction::Decrypt => libc::ALG_OP_DECRYPT,
        } as u32;
        let mut first = true;
        let mut chunks = src.chunks(SEND_CHUNK).peekable();
        while let Some(chunk) = chunks.next() {
            let more = chunks.peek().is_some();
            let ctl = first.then_some((op, iv));
            first = false;
            let sent = sys::send(sock, ctl, chunk, more)
                .map_err(|e| self.map_io("sendmsg", src.len(), e))?;
            if sent != chunk.len() {
                return Err(SkcipherError::ShortTransfer {
                    op: "sendmsg",
                    got: sent,
                    expected: chunk.len(),
                });
            }
        }
        Ok(())
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
        let sock = self.take_op()?;
        let res = f(&sock);
        // A socket whose request failed may hold unread data: close it.
        if res.is_ok() {
            self.give_back(sock);
        }
        res
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
