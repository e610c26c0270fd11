//! HCTR2 (Crowley, Huckleberry and Biggers, "Length-preserving encryption
//! with HCTR2", 2021; the kernel's `crypto/hctr2.c`): a wide-block,
//! length-preserving mode, so every output byte depends on every input byte
//! and two names that share a prefix share no ciphertext. Built here from
//! RustCrypto `aes` and `polyval`. The crates that offer HCTR2 whole were not
//! fit: `hctr2` needs a nightly compiler, and `hctr2-rs` keeps the hash key
//! and L in plain arrays that are never wiped (it serves the tests instead,
//! as the independent implementation ours is compared with).
//!
//! With M the first 16 bytes and N the rest, tweak T, h = E(0), L = E(1):
//! MM = M ^ H(T, N); UU = E(MM); S = MM ^ UU ^ L; V = N ^ XCTR(S);
//! U = UU ^ H(T, V); the ciphertext is U || V. H is POLYVAL over
//! le128(2|T|+2) || pad(T) || N when 16 divides |N| (lengths in bits), else
//! over le128(2|T|+3) || pad(T) || pad(N || 1). XCTR(S) is E(S ^ le128(1)),
//! E(S ^ le128(2)), ...

use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, BlockSizeUser};
use polyval::universal_hash::UniversalHash;
use polyval::Polyval;
use zeroize::{Zeroize, Zeroizing};

use super::aes_any::{with_aes, AesKey};
use crate::skcipher::backend::Direction;
use crate::skcipher::error::SkcipherError;

const BLOCK: usize = 16;

/// One key's HCTR2 state. The AES schedule and the POLYVAL state wipe
/// themselves on drop (features `zeroize` of both crates); L is wrapped.
pub struct Hctr2Keys {
    aes: AesKey,
    /// POLYVAL keyed with h = E(0), cloned for each hash.
    hash: Polyval,
    /// The same after the length block and an all-zero 32-byte tweak, for
    /// whole-block and partial messages: names are hashed under that tweak,
    /// and starting past it saves three of four multiplications on a name
    /// (as the kernel precomputes its tweak-length blocks).
    zero_tweak: [Polyval; 2],
    l: Zeroizing<[u8; BLOCK]>,
}

impl Hctr2Keys {
    /// `key` has passed the table's check (16, 24 or 32 bytes).
    pub fn new(key: &[u8]) -> Result<Self, SkcipherError> {
        let aes = AesKey::new(key)?;
        let mut h = Zeroizing::new([0u8; BLOCK]);
        let mut l = Zeroizing::new([0u8; BLOCK]);
        l[0] = 1;
        with_aes!(&aes, c => {
            c.encrypt_block((&mut *h).into());
            c.encrypt_block((&mut *l).into());
        });
        let hash = Polyval::new((&*h).into());
        let zero_tweak = [false, true].map(|partial| {
            let mut p = hash.clone();
            absorb_tweak(&mut p, &[0; ZERO_TWEAK], partial);
            p
        });
        Ok(Self {
            aes,
            hash,
            zero_tweak,
            l,
        })
    }

    /// H(T, msg).
    fn hash(&self, tweak: &[u8], msg: &[u8]) -> Zeroizing<[u8; BLOCK]> {
        let partial = !msg.len().is_multiple_of(BLOCK);
        let mut p = if tweak == [0; ZERO_TWEAK] {
            self.zero_tweak[usize::from(partial)].clone()
        } else {
            let mut p = self.hash.clone();
            absorb_tweak(&mut p, tweak, partial);
            p
        };
        let (blocks, tail) = polyval::Block::slice_as_chunks(msg);
        p.update(blocks);
        if partial {
            // pad(N || 1): the tail, a one byte, zeros.
            let mut last = Zeroizing::new([0u8; BLOCK]);
            last[..tail.len()].copy_from_slice(tail);
            last[tail.len()] = 1;
            p.update(&[(*last).into()]);
        }
        Zeroizing::new(p.finalize().into())
    }

    /// Encrypts or decrypts `buf` (at least 16 bytes: the table checks it)
    /// in place under `tweak`.
    pub fn crypt(&self, dir: Direction, tweak: &[u8], buf: &mut [u8]) -> Result<(), SkcipherError> {
        if buf.len() < BLOCK {
            return Err(SkcipherError::LengthTooShort {
                alg: "hctr2(aes)",
                len: buf.len(),
                min: BLOCK,
            });
        }
        with_aes!(&self.aes, c => self.crypt_with(c, dir, tweak, buf));
        Ok(())
    }

    fn crypt_with<C>(&self, c: &C, dir: Direction, tweak: &[u8], buf: &mut [u8])
    where
        C: BlockCipherEncrypt
            + BlockCipherDecrypt
            + BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
    {
        let (first, rest) = buf.split_at_mut(BLOCK);
        // Encrypting, `first` is M and `rest` is N; decrypting, U and V.
        let mut mm = Zeroizing::new([0u8; BLOCK]);
        let mut uu = Zeroizing::new([0u8; BLOCK]);
        let h_in = self.hash(tweak, rest);
        let (into, out) = match dir {
            Direction::Encrypt => (&mut mm, &mut uu),
            Direction::Decrypt => (&mut uu, &mut mm),
        };
        xor_into(into, first, &h_in);
        out.copy_from_slice(&**into);
        match dir {
            Direction::Encrypt => c.encrypt_block((&mut **out).into()),
            Direction::Decrypt => c.decrypt_block((&mut **out).into()),
        }
        let mut s = Zeroizing::new([0u8; BLOCK]);
        for i in 0..BLOCK {
            s[i] = mm[i] ^ uu[i] ^ self.l[i];
        }
        xctr(c, &s, rest);
        let h_out = self.hash(tweak, rest);
        // Encrypting, U = UU ^ H(T, V); decrypting, M = MM ^ H(T, N).
        let last = match dir {
            Direction::Encrypt => &uu,
            Direction::Decrypt => &mm,
        };
        let mut result = Zeroizing::new([0u8; BLOCK]);
        xor_into(&mut result, &**last, &h_out);
        first.copy_from_slice(&*result);
    }
}

/// The kernel's tweak length, whose all-zero value names use.
const ZERO_TWEAK: usize = 32;

/// H's start: le128(2|T| + 2), or + 3 for a message that is not whole
/// blocks (lengths in bits), then the tweak padded to whole blocks.
fn absorb_tweak(p: &mut Polyval, tweak: &[u8], partial: bool) {
    let bits = tweak.len() as u128 * 8;
    let first = 2 * bits + if partial { 3 } else { 2 };
    p.update(&[first.to_le_bytes().into()]);
    p.update_padded(tweak);
}

fn xor_into(out: &mut [u8; BLOCK], a: &[u8], b: &[u8; BLOCK]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
}

/// XORs XCTR(S) into `data`: block i (from 1) of the key stream is E(S ^ le128(i)).
fn xctr<C>(c: &C, s: &[u8; BLOCK], data: &mut [u8])
where
    C: BlockCipherEncrypt + BlockSizeUser<BlockSize = aes::cipher::consts::U16>,
{
    let mut stream = [0u8; BLOCK];
    for (i, chunk) in data.chunks_mut(BLOCK).enumerate() {
        stream.copy_from_slice(s);
        let counter = (i as u64 + 1).to_le_bytes();
        for (b, x) in stream.iter_mut().zip(counter) {
            *b ^= x;
        }
        c.encrypt_block((&mut stream).into());
        for (d, k) in chunk.iter_mut().zip(stream) {
            *d ^= k;
        }
    }
    stream.zeroize();
}
