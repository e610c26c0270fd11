//! Pure arithmetic between plaintext and ciphertext positions (gocryptfs keeps
//! the same in `contentenc/offsets.go`). `p`/`c` prefixes name plaintext and
//! ciphertext quantities.
//!
//! A file of plaintext size P > 0 is stored as the 32-byte header, then each
//! sector n. The free functions are the skcipher sector modes' (`xts(aes)`,
//! ESSIV), whose sector n is at `32 + n*S`: the last sector, of `t` bytes
//! (1 <= t <= S), is encrypted zero-padded to a multiple of 16 and followed
//! by `t % 16` filler bytes, so the ciphertext size is `32 + P`, plus 16 when
//! P is not a multiple of 16. [`Layout`] covers both modes; in the AEAD mode
//! (`gcm(aes)`) a sector of `t` bytes is stored as nonce (12) || ciphertext
//! (t) || tag (16), sector n at `32 + n*(S + 28)`. In both, P follows from
//! the ciphertext size alone.

use super::header::HEADER_LEN;

const H: u64 = HEADER_LEN as u64;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a ciphertext size of {0} bytes is impossible for the format (damaged or not a cipherfs file)"
)]
pub struct ImpossibleSize(pub u64);

/// Ciphertext size for a plaintext size.
pub fn cipher_size(p_size: u64) -> u64 {
    if p_size == 0 {
        0
    } else {
        H + p_size + if p_size.is_multiple_of(16) { 0 } else { 16 }
    }
}

/// Plaintext size for a ciphertext size, or why no plaintext has it.
pub fn plain_size(c_size: u64) -> Result<u64, ImpossibleSize> {
    if c_size == 0 || c_size == H {
        // A header alone (a crash between header and data) holds nothing.
        return Ok(0);
    }
    let d = c_size.checked_sub(H).ok_or(ImpossibleSize(c_size))?;
    if d.is_multiple_of(16) {
        Ok(d)
    } else if d > 16 {
        Ok(d - 16)
    } else {
        Err(ImpossibleSize(c_size))
    }
}

/// Where sector `n` starts in the ciphertext file.
pub fn c_sector_offset(n: u64, sector: u64) -> u64 {
    H + n * sector
}

/// Number of sectors a plaintext of `p_size` bytes occupies.
pub fn sector_count(p_size: u64, sector: u64) -> u64 {
    p_size.div_ceil(sector)
}

/// Plaintext bytes in sector `n` of a file of `p_size` bytes (0 past the end).
pub fn sector_plain_len(n: u64, p_size: u64, sector: u64) -> u64 {
    p_size.saturating_sub(n * sector).min(sector)
}

/// Bytes the cipher processes for a sector holding `t` plaintext bytes.
pub fn encrypted_len(t: u64) -> u64 {
    t.div_ceil(16) * 16
}

/// Bytes stored for a sector holding `t` plaintext bytes: the encrypted part,
/// plus `t % 16` filler bytes when it is a padded last sector.
pub fn stored_len(t: u64) -> u64 {
    encrypted_len(t) + t % 16
}

/// Bytes an AEAD sector adds to its text: the nonce before it, the tag after.
pub const AEAD_NONCE: u64 = 12;
pub const AEAD_TAG: u64 = 16;
pub const AEAD_OVERHEAD: u64 = AEAD_NONCE + AEAD_TAG;

/// How sectors are stored: by a length-preserving skcipher, or by an AEAD
/// with a nonce and a tag per sector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectorMode {
    Skcipher,
    Aead,
}

/// The stored layout of a cipher directory's files: the sector mode and the
/// plaintext sector size `S`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub mode: SectorMode,
    pub sector: u64,
}

impl Layout {
    pub fn new(mode: SectorMode, sector: u64) -> Self {
        Self { mode, sector }
    }

    /// Stored bytes per full sector.
    pub fn stride(&self) -> u64 {
        match self.mode {
            SectorMode::Skcipher => self.sector,
            SectorMode::Aead => self.sector + AEAD_OVERHEAD,
        }
    }

    /// Where a sector's text starts in its stored form.
    pub fn text_offset(&self) -> usize {
        match self.mode {
            SectorMode::Skcipher => 0,
            SectorMode::Aead => AEAD_NONCE as usize,
        }
    }

    /// Ciphertext size for a plaintext size.
    pub fn cipher_size(&self, p_size: u64) -> u64 {
        match self.mode {
            SectorMode::Skcipher => cipher_size(p_size),
            SectorMode::Aead if p_size == 0 => 0,
            SectorMode::Aead => H + p_size + AEAD_OVERHEAD * p_size.div_ceil(self.sector),
        }
    }

    /// Plaintext size for a ciphertext size, or why no plaintext has it.
    pub fn plain_size(&self, c_size: u64) -> Result<u64, ImpossibleSize> {
        if self.mode == SectorMode::Skcipher {
            return plain_size(c_size);
        }
        if c_size == 0 || c_size == H {
            return Ok(0);
        }
        let d = c_size.checked_sub(H).ok_or(ImpossibleSize(c_size))?;
        let (full, rest) = (d / self.stride(), d % self.stride());
        match rest {
            0 => Ok(full * self.sector),
            // A sector holds at least one byte besides its nonce and tag.
            r if r > AEAD_OVERHEAD => Ok(full * self.sector + r - AEAD_OVERHEAD),
            _ => Err(ImpossibleSize(c_size)),
        }
    }

    /// Where sector `n` starts in the ciphertext file.
    pub fn c_sector_offset(&self, n: u64) -> u64 {
        H + n * self.stride()
    }

    /// Bytes stored for a sector holding `t` plaintext bytes.
    pub fn stored_len(&self, t: u64) -> u64 {
        match self.mode {
            SectorMode::Skcipher => stored_len(t),
            SectorMode::Aead => t + AEAD_OVERHEAD,
        }
    }

    /// Plaintext bytes in sector `n` of a file of `p_size` bytes (0 past the end).
    pub fn sector_plain_len(&self, n: u64, p_size: u64) -> u64 {
        sector_plain_len(n, p_size, self.sector)
    }

    /// The sectors a plaintext range `[p_off, p_off + len)` touches.
    pub fn sectors_touched(&self, p_off: u64, len: u64) -> std::ops::Range<u64> {
        sectors_touched(p_off, len, self.sector)
    }

    /// Stored bytes of the run of sectors `first..=last` of a file of
    /// plaintext size `p_size` (the last one at its length there).
    pub fn run_len(&self, first: u64, last: u64, p_size: u64) -> u64 {
        (last - first) * self.stride() + self.stored_len(self.sector_plain_len(last, p_size))
    }
}

/// The sectors a plaintext range `[p_off, p_off + len)` touches.
pub fn sectors_touched(p_off: u64, len: u64, sector: u64) -> std::ops::Range<u64> {
    if len == 0 {
        return 0..0;
    }
    p_off / sector..(p_off + len).div_ceil(sector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn boundary_sizes(s: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..=100).collect();
        for k in 1..=3 {
            for d in 0..=34 {
                v.push((k * s + d).saturating_sub(17));
            }
        }
        v
    }

    #[test]
    fn sizes_round_trip_at_every_boundary() {
        for s in [512, 1024, 2048, 4096] {
            for p in boundary_sizes(s) {
                let c = cipher_size(p);
                assert_eq!(plain_size(c), Ok(p), "p={p} s={s}");
                // The stored layout adds up to the same size.
                if p > 0 {
                    let n = sector_count(p, s);
                    let last_t = sector_plain_len(n - 1, p, s);
                    assert_eq!(
                        c_sector_offset(n - 1, s) + stored_len(last_t),
                        c,
                        "p={p} s={s}"
                    );
                }
            }
        }
    }

    #[test]
    fn impossible_sizes_are_named() {
        for c in 1..32 {
            assert_eq!(plain_size(c), Err(ImpossibleSize(c)));
        }
        for c in 33..=48 {
            // 33..47 would need a plaintext of -15..-1 bytes; 48 is 16 bytes.
            assert_eq!(plain_size(c).is_ok(), c == 48, "c={c}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(sectors_touched(0, 0, 4096), 0..0);
        assert_eq!(sectors_touched(4095, 1, 4096), 0..1);
        assert_eq!(sectors_touched(4095, 2, 4096), 0..2);
        assert_eq!(sectors_touched(8192, 4096, 4096), 2..3);
        assert_eq!(sector_plain_len(2, 8193, 4096), 1);
        assert_eq!(sector_plain_len(3, 8193, 4096), 0);
        assert_eq!(
            (encrypted_len(17), stored_len(17), stored_len(32)),
            (32, 33, 32)
        );
    }

    const AEAD_SECTORS: [Layout; 4] = [
        Layout {
            mode: SectorMode::Aead,
            sector: 512,
        },
        Layout {
            mode: SectorMode::Aead,
            sector: 1024,
        },
        Layout {
            mode: SectorMode::Aead,
            sector: 2048,
        },
        Layout {
            mode: SectorMode::Aead,
            sector: 4096,
        },
    ];

    #[test]
    fn aead_sizes_round_trip_at_every_boundary() {
        for l in AEAD_SECTORS {
            let s = l.sector;
            for p in boundary_sizes(s) {
                let c = l.cipher_size(p);
                assert_eq!(l.plain_size(c), Ok(p), "p={p} s={s}");
                if p > 0 {
                    let n = sector_count(p, s);
                    assert_eq!(l.c_sector_offset(0) + l.run_len(0, n - 1, p), c, "p={p}");
                    // Every sector is nonce || text || tag.
                    assert_eq!(c, 32 + p + 28 * n, "p={p} s={s}");
                }
            }
            // One stored sector: 29 bytes is one plaintext byte; 1..=28 past
            // a whole number of sectors is not a size any file has.
            assert_eq!(l.plain_size(32 + 29), Ok(1));
            for r in 1..=28 {
                assert_eq!(l.plain_size(32 + r), Err(ImpossibleSize(32 + r)));
                let c = 32 + l.stride() + r;
                assert_eq!(l.plain_size(c), Err(ImpossibleSize(c)));
            }
            for c in 1..32 {
                assert_eq!(l.plain_size(c), Err(ImpossibleSize(c)));
            }
        }
        let l = AEAD_SECTORS[3];
        assert_eq!(
            (l.stride(), l.c_sector_offset(2), l.stored_len(1)),
            (4124, 32 + 8248, 29)
        );
        assert_eq!(l.cipher_size(4096), 32 + 4124);
        assert_eq!(l.cipher_size(4097), 32 + 4124 + 29);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20000))]
        #[test]
        fn aead_plain_size_inverts_cipher_size(p in 0u64..(1 << 50), k in 0usize..4) {
            let l = AEAD_SECTORS[k];
            prop_assert_eq!(l.plain_size(l.cipher_size(p)), Ok(p));
        }

        #[test]
        fn aead_plain_size_never_panics_and_is_consistent(c in any::<u64>(), k in 0usize..4) {
            let l = AEAD_SECTORS[k];
            if let Ok(p) = l.plain_size(c) {
                prop_assert!(p == 0 || l.cipher_size(p) == c);
            }
        }

        #[test]
        fn plain_size_inverts_cipher_size(p in 0u64..(1 << 50)) {
            prop_assert_eq!(plain_size(cipher_size(p)), Ok(p));
        }

        #[test]
        fn plain_size_never_panics_and_is_consistent(c in any::<u64>()) {
            if let Ok(p) = plain_size(c) {
                prop_assert!(p == 0 || cipher_size(p) == c);
            }
        }
    }
}
