//! The kernel AEAD backend: `salg_type "aead"` AF_ALG sockets
//! (`crypto/algif_aead.c`), through the skcipher layer's socket code: the
//! same system calls, the same request sending, the same pool of operation
//! sockets. setkey binds a fresh transform socket, sets the key and the tag
//! length on it; a request sends AAD || text (|| tag) with ALG_SET_OP,
//! ALG_SET_IV and ALG_SET_AEAD_ASSOCLEN, and reads AAD || CT || tag (encrypt)
//! or AAD || PT (decrypt, EBADMSG when the tag does not verify).

use std::io;

use zeroize::Zeroizing;

use super::AeadError;
use crate::skcipher::afalg::{bound, send_request, sys, OpPool, SendError, MAX_REQUEST};
use crate::skcipher::Direction;

fn kernel(op: &'static str, e: io::Error) -> AeadError {
    match e.raw_os_error() {
        Some(libc::EAFNOSUPPORT) => AeadError::AfAlgUnsupported,
        Some(libc::EBADMSG) => AeadError::BadMessage,
        _ => AeadError::Kernel {
            op,
            message: e.to_string(),
        },
    }
}

/// Binds an AEAD transform socket for `name`.
fn open(name: &'static str) -> Result<std::os::fd::OwnedFd, AeadError> {
    bound("aead", name).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => AeadError::KernelLacksAlgorithm(name),
        _ => kernel("bind", e),
    })
}

/// Whether the running kernel offers `name` as an AF_ALG AEAD.
pub fn probe(name: &'static str) -> Result<(), AeadError> {
    open(name).map(drop)
}

pub struct AfalgAead {
    pool: OpPool,
    authsize: usize,
}

impl AfalgAead {
    pub fn new(name: &'static str, key: &[u8], authsize: usize) -> Result<Self, AeadError> {
        let tfm = open(name)?;
        sys::set_key(&tfm, key).map_err(|e| kernel("setsockopt(ALG_SET_KEY)", e))?;
        sys::set_aead_authsize(&tfm, authsize)
            .map_err(|e| kernel("setsockopt(ALG_SET_AEAD_AUTHSIZE)", e))?;
        Ok(Self {
            pool: OpPool::new(tfm),
            authsize,
        })
    }

    /// `data` as the layer passes it (lengths checked); replaced by the
    /// kernel's output.
    pub fn crypt(
        &self,
        dir: Direction,
        iv: &[u8],
        assoclen: usize,
        data: &mut Vec<u8>,
    ) -> Result<(), AeadError> {
        if data.len() > MAX_REQUEST {
            return Err(AeadError::TooLong {
                len: data.len(),
                max: MAX_REQUEST,
            });
        }
        let out_len = match dir {
            Direction::Encrypt => data.len() + self.authsize,
            Direction::Decrypt => data.len() - self.authsize,
        };
        self.pool.with(
            |e| kernel("accept", e),
            |sock| {
                send_request(sock, dir, iv, Some(assoclen as u32), data).map_err(|e| match e {
                    SendError::Io(e) => kernel("sendmsg", e),
                    SendError::Short { got, expected } => AeadError::Kernel {
                        op: "sendmsg",
                        message: format!("sent {got} of {expected} bytes"),
                    },
                })?;
                // The kernel runs a request when it is read, and a read of no
                // bytes returns at once without running it (a decryption of
                // no text and no associated data would then verify nothing and
                // leave the request pending): always offer at least one byte.
                let mut out = Zeroizing::new(vec![0u8; out_len.max(1)]);
                let got = sys::recv(sock, &mut out).map_err(|e| kernel("recv", e))?;
                out.truncate(out_len);
                if got != out_len {
                    return Err(AeadError::Kernel {
                        op: "recv",
                        message: format!("read {got} of {out_len} bytes"),
                    });
                }
                data.clear();
                data.extend_from_slice(&out);
                Ok(())
            },
        )
    }

    /// The kernel takes AAD || text (|| tag) as one stream, so the three
    /// pieces are gathered into one buffer (wiped after) and spread back.
    pub fn crypt_parts(
        &self,
        dir: Direction,
        iv: &[u8],
        aad: &[u8],
        text: &mut [u8],
        tag: &mut [u8],
    ) -> Result<(), AeadError> {
        let mut data = Zeroizing::new(Vec::with_capacity(aad.len() + text.len() + tag.len()));
        data.extend_from_slice(aad);
        data.extend_from_slice(text);
        if dir == Direction::Decrypt {
            data.extend_from_slice(tag);
        }
        self.crypt(dir, iv, aad.len(), &mut data)?;
        let out = &data[aad.len()..];
        text.copy_from_slice(&out[..text.len()]);
        if dir == Direction::Encrypt {
            tag.copy_from_slice(&out[text.len()..]);
        }
        Ok(())
    }
}
