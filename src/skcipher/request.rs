//! `struct skcipher_request`: source, destination, IV, caller context, and the
//! handle it belongs to. Runs synchronously, or asynchronously with a completion
//! callback that is called exactly once, on success, failure, panic or cancel.

use std::sync::Arc;

use super::backend::Direction;
use super::engine;
use super::error::SkcipherError;
use super::Skcipher;

/// Largest IV of any algorithm in the table: hctr2(aes)'s 32-byte tweak.
pub const MAX_IV: usize = 32;

/// A request on a handle. `C` is the caller's context (the kernel's `data`).
pub struct SkcipherRequest<C = ()> {
    tfm: Arc<Skcipher>,
    src: Option<Vec<u8>>,
    dst: Vec<u8>,
    iv: [u8; MAX_IV],
    ivlen: usize,
    pub ctx: C,
}

/// The completion callback: gets the finished request back, with its buffers
/// and context, and the outcome.
pub type Completion<C> = Box<dyn FnOnce(SkcipherRequest<C>, Result<(), SkcipherError>) + Send>;

impl<C> SkcipherRequest<C> {
    /// `skcipher_request_alloc`: an empty request on `tfm`.
    pub fn new(tfm: &Arc<Skcipher>, ctx: C) -> Self {
        Self {
            tfm: Arc::clone(tfm),
            src: None,
            dst: Vec::new(),
            iv: [0; MAX_IV],
            ivlen: 0,
            ctx,
        }
    }

    /// `skcipher_request_set_crypt`: `src` of `None` means in place on `dst`.
    /// The length is `dst.len()`. An IV longer than any algorithm's is kept as
    /// too long, so the request fails with a clear error when it runs.
    pub fn set_crypt(&mut self, src: Option<Vec<u8>>, dst: Vec<u8>, iv: &[u8]) {
        self.src = src;
        self.dst = dst;
        self.ivlen = iv.len();
        let n = iv.len().min(MAX_IV);
        self.iv[..n].copy_from_slice(&iv[..n]);
    }

    /// `crypto_skcipher_reqtfm`.
    pub fn reqtfm(&self) -> &Arc<Skcipher> {
        &self.tfm
    }

    pub fn dst(&self) -> &[u8] {
        &self.dst
    }

    /// Gives back the destination buffer, the source buffer (if separate) and the context.
    pub fn into_parts(self) -> (Vec<u8>, Option<Vec<u8>>, C) {
        (self.dst, self.src, self.ctx)
    }

    /// A copy of the IV, so the buffers can be borrowed mutably beside it.
    fn iv(&self) -> Result<([u8; MAX_IV], usize), SkcipherError> {
        if self.ivlen > MAX_IV {
            return Err(SkcipherError::BadIvLength {
                alg: self.tfm.alg.name,
                len: self.ivlen,
                expected: self.tfm.alg.ivsize,
            });
        }
        Ok((self.iv, self.ivlen))
    }

    /// Runs the request on the calling thread.
    pub fn crypt(&mut self, dir: Direction) -> Result<(), SkcipherError> {
        let (iv, ivlen) = self.iv()?;
        let iv = &iv[..ivlen];
        match &self.src {
            Some(src) => self.tfm.crypt(dir, iv, src, &mut self.dst),
            None => self.tfm.crypt_in_place(dir, iv, &mut self.dst),
        }
    }

    /// `crypto_skcipher_encrypt` on a synchronous request.
    pub fn encrypt(&mut self) -> Result<(), SkcipherError> {
        self.crypt(Direction::Encrypt)
    }

    /// `crypto_skcipher_decrypt` on a synchronous request.
    pub fn decrypt(&mut self) -> Result<(), SkcipherError> {
        self.crypt(Direction::Decrypt)
    }
}

impl<C: Send + 'static> SkcipherRequest<C> {
    /// Asynchronous encrypt/decrypt: returns at once; `done` runs on a worker
    /// thread exactly once with the request and its outcome.
    pub fn submit(
        self,
        dir: Direction,
        done: impl FnOnce(SkcipherRequest<C>, Result<(), SkcipherError>) + Send + 'static,
    ) {
        engine::submit(
            self,
            move |r| r.crypt(dir),
            done,
            || SkcipherError::Cancelled,
        );
    }
}
