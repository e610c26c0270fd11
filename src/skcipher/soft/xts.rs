//! XTS-AES (IEEE 1619) with ciphertext stealing, built for throughput: tweaks for
//! a batch of blocks are computed first, then the whole batch goes through the
//! block cipher's multi-block path (AES-NI/VAES pipelines several blocks at once),
//! which the `xts-mode` crate's block-at-a-time loop cannot use. `xts-mode`
//! stays as the reference these functions are tested against.

use aes::cipher::consts::U16;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, BlockSizeUser};

type Block = Array<u8, U16>;

/// Blocks per batch: large enough to keep the AES pipeline full, small enough
/// for the tweak buffer to stay in L1.
const BATCH: usize = 128;

#[inline(always)]
fn mul_alpha(t: u128) -> u128 {
    // Multiplication by x in GF(2^128) with the XTS little-endian convention.
    (t << 1) ^ (((t >> 127) as u128) * 0x87)
}

#[inline(always)]
fn xor_block(b: &mut Block, t: u128) {
    b.0 = (u128::from_le_bytes(b.0) ^ t).to_le_bytes();
}

/// One block through `f` under tweak `t`: XOR, cipher, XOR.
#[inline(always)]
fn one_block(b: &mut Block, t: u128, f: &impl Fn(&mut [Block])) {
    xor_block(b, t);
    f(core::slice::from_mut(b));
    xor_block(b, t);
}

/// Runs the tweaked bulk transform over whole blocks and returns the next tweak.
fn bulk(blocks: &mut [Block], mut t: u128, f: &impl Fn(&mut [Block])) -> u128 {
    let mut tweaks = [0u128; BATCH];
    for chunk in blocks.chunks_mut(BATCH) {
        for (b, tw) in chunk.iter_mut().zip(tweaks.iter_mut()) {
            *tw = t;
            xor_block(b, t);
            t = mul_alpha(t);
        }
        f(chunk);
        for (b, tw) in chunk.iter_mut().zip(tweaks.iter()) {
            xor_block(b, *tw);
        }
    }
    t
}

fn first_tweak<T: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>>(
    tweak_key: &T,
    iv: &[u8],
) -> u128 {
    let mut t = Block::try_from(iv).expect("16-byte IV checked by the algorithm table");
    tweak_key.encrypt_block(&mut t);
    u128::from_le_bytes(t.0)
}

/// Encrypts `buf` (at least 16 bytes, checked by the caller) as one XTS data unit.
pub fn encrypt<D, T>(data_key: &D, tweak_key: &T, iv: &[u8], buf: &mut [u8])
where
    D: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
    T: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    let f = |b: &mut [Block]| data_key.encrypt_blocks(b);
    let r = buf.len() % 16;
    let full = buf.len() / 16 - usize::from(r != 0);
    let (head, tail) = buf.split_at_mut(full * 16);
    let (blocks, _) = Block::slice_as_chunks_mut(head);
    let t = bulk(blocks, first_tweak(tweak_key, iv), &f);
    if r == 0 {
        return;
    }
    // Ciphertext stealing: the last full block borrows the partial block's room.
    let (last_full, partial) = tail.split_at_mut(16);
    let mut cc = Block::try_from(&*last_full).expect("16 bytes");
    one_block(&mut cc, t, &f);
    let mut pp = cc;
    pp.0[..r].copy_from_slice(partial);
    partial.copy_from_slice(&cc.0[..r]);
    one_block(&mut pp, mul_alpha(t), &f);
    last_full.copy_from_slice(&pp.0);
}

/// Decrypts `buf` (at least 16 bytes, checked by the caller) as one XTS data unit.
pub fn decrypt<D, T>(data_key: &D, tweak_key: &T, iv: &[u8], buf: &mut [u8])
where
    D: BlockCipherDecrypt + BlockSizeUser<BlockSize = U16>,
    T: BlockCipherEncrypt + BlockSizeUser<BlockSize = U16>,
{
    let f = |b: &mut [Block]| data_key.decrypt_blocks(b);
    let r = buf.len() % 16;
    let full = buf.len() / 16 - usize::from(r != 0);
    let (head, tail) = buf.split_at_mut(full * 16);
    let (blocks, _) = Block::slice_as_chunks_mut(head);
    let t = bulk(blocks, first_tweak(tweak_key, iv), &f);
    if r == 0 {
        return;
    }
    // Stealing in reverse: the stored last full block was made with the later tweak.
    let (last_full, partial) = tail.split_at_mut(16);
    let mut pp = Block::try_from(&*last_full).expect("16 bytes");
    one_block(&mut pp, mul_alpha(t), &f);
    let mut cc = pp;
    cc.0[..r].copy_from_slice(partial);
    partial.copy_from_slice(&pp.0[..r]);
    one_block(&mut cc, t, &f);
    last_full.copy_from_slice(&cc.0);
}
