//! The subcommands that work on cipher directories.

pub mod init;
pub mod mount;

use std::path::Path;

use zeroize::Zeroizing;

use crate::config::Config;
use crate::crypto::MasterKey;
use crate::exitcode::{self, Failure};
use crate::password;

/// Loads the config of `cipherdir`, with the exit code each problem maps to.
pub fn load_config(cipherdir: &Path) -> Result<Config, Failure> {
    if !cipherdir.is_dir() {
        return Err(Failure::new(
            exitcode::CIPHERDIR,
            format!(
                "{}: not a directory (create one with `cipherfs init`)",
                cipherdir.display()
            ),
        ));
    }
    let path = crate::config::path_in(cipherdir);
    if !path.exists() {
        return Err(Failure::new(
            exitcode::CONFIG,
            format!("{}: no cipherfs.conf here; is this a cipher directory? (`cipherfs init` makes one)", cipherdir.display()),
        ));
    }
    Ok(Config::load(cipherdir)?)
}

/// Parses a master key written as hex (as `info --show-masterkey` prints
/// it), ignoring whitespace and dashes.
pub fn parse_master_hex(text: &[u8]) -> Result<MasterKey, Failure> {
    let digits: Zeroizing<Vec<u8>> = Zeroizing::new(
        text.iter()
            .copied()
            .filter(|c| c.is_ascii_hexdigit())
            .collect(),
    );
    let junk = text
        .iter()
        .any(|c| !(c.is_ascii_hexdigit() || c.is_ascii_whitespace() || *c == b'-'));
    if junk || digits.len() != 128 {
        return Err(Failure::new(
            exitcode::USAGE,
            "the master key must be 128 hex digits (64 bytes)",
        ));
    }
    let mut bytes = Zeroizing::new([0u8; 64]);
    for (i, pair) in digits.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).unwrap_or("00");
        bytes[i] = u8::from_str_radix(s, 16).unwrap_or(0);
    }
    MasterKey::from_bytes(&*bytes).ok_or_else(|| Failure::new(exitcode::USAGE, "bad master key"))
}

pub fn master_hex(key: &MasterKey) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(160));
    for (i, b) in key.expose().iter().enumerate() {
        if i > 0 && i % 8 == 0 {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Unlocks the master key with a password from `source`.
pub fn unlock(config: &Config, source: &password::Source) -> Result<MasterKey, Failure> {
    let pw =
        password::read(source, "Password", false).map_err(|e| Failure::new(exitcode::USAGE, e))?;
    Ok(config.unlock(&pw)?)
}
