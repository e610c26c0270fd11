//! Decrypts a cipherfs file from the format rules alone (man/cipherfs.5 and
//! issue 3), with `hkdf` and `xts-mode` directly, not cipherfs's code paths.

use aes::cipher::KeyInit;
use hkdf::Hkdf;
use sha2::Sha256;

/// Plaintext of an xts(aes) file stored as `c` (header + sectors), or a reason.
pub fn decrypt_xts_file(
    master: &[u8; 64],
    c: &[u8],
    sector: usize,
    key_len: usize,
) -> Result<Vec<u8>, String> {
    if c.is_empty() || c.len() == 32 {
        return Ok(Vec::new());
    }
    if c.len() < 48 {
        return Err(format!("impossible size {}", c.len()));
    }
    if c[0..2] != [1, 0] || c[2..16].iter().any(|&b| b != 0) {
        return Err("bad header".into());
    }
    let d = c.len() - 32;
    let p_size = if d.is_multiple_of(16) { d } else { d - 16 };
    let mut key = vec![0u8; key_len];
    let mut info = b"cipherfs v1 content".to_vec();
    info.extend_from_slice(&c[16..32]);
    Hkdf::<Sha256>::new(None, master)
        .expand(&info, &mut key)
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(p_size);
    let mut n = 0u64;
    while out.len() < p_size {
        let t = (p_size - out.len()).min(sector);
        let enc = t.div_ceil(16) * 16;
        let start = 32 + n as usize * sector;
        let mut buf = c[start..start + enc].to_vec();
        if buf.iter().any(|&b| b != 0) {
            let tweak = (n as u128).to_le_bytes().into();
            let (k1, k2) = key.split_at(key_len / 2);
            if key_len == 64 {
                xts_mode::Xts128::new(
                    aes::Aes256::new_from_slice(k1).unwrap(),
                    aes::Aes256::new_from_slice(k2).unwrap(),
                )
                .decrypt_sector(&mut buf, tweak);
            } else {
                xts_mode::Xts128::new(
                    aes::Aes128::new_from_slice(k1).unwrap(),
                    aes::Aes128::new_from_slice(k2).unwrap(),
                )
                .decrypt_sector(&mut buf, tweak);
            }
        }
        out.extend_from_slice(&buf[..t]);
        n += 1;
    }
    Ok(out)
}
