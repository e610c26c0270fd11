//! Pure arithmetic between plaintext and ciphertext positions (gocryptfs keeps
//! the same in `contentenc/offsets.go`). `p`/`c` prefixes name plaintext and
//! ciphertext quantities.
//!
//! A file of plaintext size P > 0 is stored as the 32-byte header, then each
//! sector n at `32 + n*S`. The last sector, of `t` bytes (1 <= t <= S), is
//! encrypted zero-padded to a multiple of 16 and followed by `t % 16` filler
//! bytes, so the ciphertext size is `32 + P`, plus 16 when P is not a multiple
//! of 16, and P follows from the ciphertext size alone.

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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20000))]
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
