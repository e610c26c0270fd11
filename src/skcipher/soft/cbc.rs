//! CBC-family modes over one AES key: plain CBC and ECB (through the `cbc` and
//! `aes` crates' multi-block paths), CBC with ciphertext stealing in the kernel's
//! `cts` (CS3) layout, and the ESSIV IV transform dm-crypt uses.

use aes::cipher::consts::U16;
use aes::cipher::{
    Array, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt,
    BlockSizeUser, InnerIvInit,
};

use crate::skcipher::SkcipherError;

type Block = Array<u8, U16>;

fn as_blocks(buf: &mut [u8]) -> &mut [Block] {
    let (blocks, rest) = Block::slice_as_chunks_mut(buf);
    debug_assert!(rest.is_empty(), "length checked by the algorithm table");
    blocks
}

/// A 16-byte block from a slice: IVs (checked by the algorithm table) and
/// blocks cut from the data; a wrong length is an error, never a panic.
fn iv_block(iv: &[u8]) -> Result<Block, SkcipherError> {
    Block::try_from(iv).map_err(|_| SkcipherError::BadIvLength {
        alg: "cbc(aes)",
        len: iv.len(),
        expected: 16,
    })
}

pub fn cbc_encrypt<C>(c: &C, iv: &[u8], buf: &mut [u8]) -> Result<(), SkcipherError>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    cbc::Encryptor::<&C>::inner_iv_init(c, &iv_block(iv)?).encrypt_blocks(as_blocks(buf));
    Ok(())
}

pub fn cbc_decrypt<C>(c: &C, iv: &[u8], buf: &mut [u8]) -> Result<(), SkcipherError>
where
    C: BlockCipherDecrypt + BlockSizeUser<BlockSize = U16>,
{
    cbc::Decryptor::<&C>::inner_iv_init(c, &iv_block(iv)?).decrypt_blocks(as_blocks(buf));
    Ok(())
}

/// CBC-CS3 (the kernel's `cts(cbc(aes))`, RFC 3962): the last two blocks are
/// always swapped when there is more than one, the final one possibly partial.
pub fn cts_encrypt<C>(c: &C, iv: &[u8], buf: &mut [u8]) -> Result<(), SkcipherError>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    let n = buf.len();
    if n == 16 {
        return cbc_encrypt(c, iv, buf);
    }
    let m = n.div_ceil(16);
    let r = n - 16 * (m - 1);
    let (head, last) = buf.split_at_mut(16 * (m - 1));
    cbc_encrypt(c, iv, head)?;
    let c_prev = iv_block(&head[16 * (m - 2)..])?;
    let mut x = c_prev;
    for (xb, pb) in x.0.iter_mut().zip(last.iter()) {
        *xb ^= pb;
    }
    c.encrypt_block(&mut x);
    head[16 * (m - 2)..].copy_from_slice(&x.0);
    last.copy_from_slice(&c_prev.0[..r]);
    Ok(())
}

pub fn cts_decrypt<C>(c: &C, iv: &[u8], buf: &mut [u8]) -> Result<(), SkcipherError>
where
    C: BlockCipherDecrypt + BlockSizeUser<BlockSize = U16>,
{
    let n = buf.len();
    if n == 16 {
        return cbc_decrypt(c, iv, buf);
    }
    let m = n.div_ceil(16);
    let r = n - 16 * (m - 1);
    let (head, last) = buf.split_at_mut(16 * (m - 1));
    let (prefix, swapped) = head.split_at_mut(16 * (m - 2));
    // The chaining value for block m-1 is C(m-2), or the IV: read it before
    // decrypting the prefix in place destroys it.
    let chain = if m > 2 {
        iv_block(&prefix[16 * (m - 3)..])?
    } else {
        iv_block(iv)?
    };
    cbc_decrypt(c, iv, prefix)?;
    let mut d = iv_block(swapped)?;
    c.decrypt_block(&mut d);
    let mut c_m1 = d;
    c_m1.0[..r].copy_from_slice(last);
    for (lb, db) in last.iter_mut().zip(d.0.iter()) {
        *lb ^= db;
    }
    c.decrypt_block(&mut c_m1);
    for (pb, cb) in c_m1.0.iter_mut().zip(chain.0.iter()) {
        *pb ^= cb;
    }
    swapped.copy_from_slice(&c_m1.0);
    Ok(())
}

/// ESSIV: the IV actually used is AES_salt(iv), with salt = SHA-256(key).
pub fn essiv_iv<C>(salt_cipher: &C, iv: &[u8]) -> Result<Block, SkcipherError>
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    let mut b = iv_block(iv)?;
    salt_cipher.encrypt_block(&mut b);
    Ok(b)
}
