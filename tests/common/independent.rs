//! Decrypts cipherfs files and format 2 names from the format rules alone
//! (man/cipherfs.5), with `hkdf`, `xts-mode`, `aes-gcm` and `hctr2-rs`
//! directly, not cipherfs's code paths.

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
    // Formats 1 and 2 store contents alike; the header says which it is.
    if !matches!(c[0..2], [1, 0] | [2, 0]) || c[2..16].iter().any(|&b| b != 0) {
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

/// Plaintext of a format 2 `gcm(aes)` file stored as `c`, or a reason
/// naming the first sector that does not authenticate. Sector n of t bytes
/// is nonce (12) || C (t) || tag (16) at 32 + n*(S + 28), under
/// HKDF-SHA256(master, "cipherfs v2 gcm content" || file nonce) with
/// le64(n) || file nonce as associated data; all zeros is a hole.
pub fn decrypt_gcm_file(master: &[u8; 64], c: &[u8], sector: usize) -> Result<Vec<u8>, String> {
    use aes_gcm::aead::{AeadInOut, KeyInit as _};
    if c.is_empty() || c.len() == 32 {
        return Ok(Vec::new());
    }
    if c.len() < 32 + 29 || c[0..2] != [2, 0] || c[2..16].iter().any(|&b| b != 0) {
        return Err(format!("bad header or impossible size {}", c.len()));
    }
    let file_nonce = &c[16..32];
    let mut key = [0u8; 32];
    let mut info = b"cipherfs v2 gcm content".to_vec();
    info.extend_from_slice(file_nonce);
    Hkdf::<Sha256>::new(None, master)
        .expand(&info, &mut key)
        .map_err(|e| e.to_string())?;
    let gcm = aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap();
    let mut out = Vec::new();
    for (n, stored) in c[32..].chunks(sector + 28).enumerate() {
        if stored.len() <= 28 {
            return Err(format!("sector {n} is {} bytes", stored.len()));
        }
        let (nonce, rest) = stored.split_at(12);
        let (ct, tag) = rest.split_at(rest.len() - 16);
        if stored.iter().all(|&b| b == 0) {
            out.resize(out.len() + ct.len(), 0);
            continue;
        }
        let mut aad = (n as u64).to_le_bytes().to_vec();
        aad.extend_from_slice(file_nonce);
        let mut text = ct.to_vec();
        gcm.decrypt_inout_detached(
            nonce.try_into().unwrap(),
            &aad,
            text.as_mut_slice().into(),
            tag.try_into().unwrap(),
        )
        .map_err(|_| format!("sector {n} does not authenticate"))?;
        out.extend_from_slice(&text);
    }
    Ok(out)
}

/// The plaintext of a format 2 stored name (the short entry, or a long
/// name's full encoded form) in a directory whose `cipherfs.diriv` is
/// `diriv`: HCTR2-AES-256 under HKDF-SHA256(master, "cipherfs v2 names" ||
/// diriv), all-zero 32-byte tweak, NUL padding to a multiple of 32.
pub fn decrypt_name_v2(
    master: &[u8; 64],
    diriv: &[u8; 16],
    stored: &str,
) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let ct = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(stored)
        .map_err(|e| e.to_string())?;
    if ct.is_empty() || ct.len() % 32 != 0 {
        return Err(format!("{} bytes is not a multiple of 32", ct.len()));
    }
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(None, master)
        .expand(&[&b"cipherfs v2 names"[..], diriv].concat(), &mut key)
        .map_err(|e| e.to_string())?;
    let mut pt = vec![0u8; ct.len()];
    hctr2_rs::Hctr2_256::new(&key)
        .decrypt(&ct, &[0u8; 32], &mut pt)
        .map_err(|e| format!("{e:?}"))?;
    let len = pt.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if len == 0 || pt.len() != len.div_ceil(32) * 32 {
        return Err("not canonically padded".into());
    }
    pt.truncate(len);
    Ok(pt)
}
