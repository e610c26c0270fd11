//! `struct aead_request`: the data (associated data, then the text, then
//! the tag when decrypting), the associated data's length, the IV, the
//! caller's context and the handle. Runs synchronously, or asynchronously
//! with a completion called exactly once (the skcipher layer's engine).

use std::sync::Arc;

use super::{Aead, AeadError};
use crate::skcipher::{engine, Direction};

/// The IV of any AEAD algorithm in the table (gcm(aes)'s 12 bytes).
const MAX_IV: usize = 16;

pub struct AeadRequest<C = ()> {
    tfm: Arc<Aead>,
    data: Vec<u8>,
    assoclen: usize,
    iv: [u8; MAX_IV],
    ivlen: usize,
    pub ctx: C,
}

impl<C> AeadRequest<C> {
    /// `aead_request_alloc`: an empty request on `tfm`.
    pub fn new(tfm: &Arc<Aead>, ctx: C) -> Self {
        Self {
            tfm: Arc::clone(tfm),
            data: Vec::new(),
            assoclen: 0,
            iv: [0; MAX_IV],
            ivlen: 0,
            ctx,
        }
    }

    /// `aead_request_set_crypt`: the data, in place, and the IV. An IV
    /// longer than any algorithm's is kept as too long, to fail when run.
    pub fn set_crypt(&mut self, data: Vec<u8>, iv: &[u8]) {
        self.data = data;
        self.ivlen = iv.len();
        let n = iv.len().min(MAX_IV);
        self.iv[..n].copy_from_slice(&iv[..n]);
    }

    /// `aead_request_set_ad`: how many bytes at the start of the data are
    /// associated data (authenticated, not encrypted).
    pub fn set_ad(&mut self, assoclen: usize) {
        self.assoclen = assoclen;
    }

    /// `crypto_aead_reqtfm`.
    pub fn reqtfm(&self) -> &Arc<Aead> {
        &self.tfm
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn into_parts(self) -> (Vec<u8>, C) {
        (self.data, self.ctx)
    }

    pub fn crypt(&mut self, dir: Direction) -> Result<(), AeadError> {
        if self.ivlen > MAX_IV {
            return Err(AeadError::BadIvLength {
                alg: self.tfm.name(),
                len: self.ivlen,
                expected: self.tfm.ivsize(),
            });
        }
        let iv = self.iv;
        self.tfm
            .crypt(dir, &iv[..self.ivlen], self.assoclen, &mut self.data)
    }

    /// `crypto_aead_encrypt` on a synchronous request.
    pub fn encrypt(&mut self) -> Result<(), AeadError> {
        self.crypt(Direction::Encrypt)
    }

    /// `crypto_aead_decrypt` on a synchronous request; a tag that does not
    /// verify is `AeadError::BadMessage`.
    pub fn decrypt(&mut self) -> Result<(), AeadError> {
        self.crypt(Direction::Decrypt)
    }
}

impl<C: Send + 'static> AeadRequest<C> {
    /// Asynchronous encrypt/decrypt: returns at once; `done` runs on a
    /// worker thread exactly once with the request and its outcome.
    pub fn submit(
        self,
        dir: Direction,
        done: impl FnOnce(AeadRequest<C>, Result<(), AeadError>) + Send + 'static,
    ) {
        engine::submit(self, move |r| r.crypt(dir), done, || AeadError::Cancelled);
    }
}
