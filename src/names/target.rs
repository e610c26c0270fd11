//! Symbolic-link targets: their bounds, and the companion file a target
//! too long for a backing symlink is stored in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The longest symlink target, as Linux allows (PATH_MAX less the NUL).
pub const TARGET_MAX: usize = 4095;
/// The longest stored target a backing symlink holds (PATH_MAX less the
/// NUL): plaintext targets up to 3040 bytes. A longer stored form goes to a
/// companion file at the cipher directory's root, named `LONGLINK_PREFIX`
/// and the unpadded base64url SHA-256 of the stored form, and the backing
/// symlink points to that name.
pub const LINK_MAX: usize = 4095;
pub const LONGLINK_PREFIX: &str = "cipherfs.longlink.";
/// The longest companion: a 4095-byte target padded to 4096, with its
/// 16-byte IV, base64url-encoded (5483 bytes).
pub const LONGLINK_MAX: usize = ((16 + TARGET_MAX.div_ceil(16) * 16) * 4).div_ceil(3);

/// The companion name for a stored target too long for a backing symlink.
pub fn longlink_name(full: &str) -> String {
    format!(
        "{LONGLINK_PREFIX}{}",
        B64URL.encode(Sha256::digest(full.as_bytes()))
    )
}

/// Whether a backing symlink's target names a long-target companion (a
/// stored target proper is base64url, which has no '.').
pub fn is_longlink(stored: &[u8]) -> bool {
    stored.starts_with(LONGLINK_PREFIX.as_bytes())
}

/// The stored target in a long-target companion (its bytes, read with the
/// bound LONGLINK_MAX), checked against the hash in its name `link`.
pub fn parse_long_target(full: &[u8], link: &str) -> Result<String, String> {
    let full = std::str::from_utf8(full)
        .map_err(|_| format!("long-target companion {link} is not UTF-8"))?;
    if longlink_name(full) != link {
        return Err(format!(
            "long-target companion {link} does not match its name's hash"
        ));
    }
    Ok(full.to_string())
}
