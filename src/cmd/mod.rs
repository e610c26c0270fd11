//! One module per subcommand (`main.rs` parses and dispatches), and what
//! several of them share: loading a config, unlocking, the master key as hex.

pub mod backends;
pub mod fsck;
pub mod info;
pub mod init;
pub mod mount;
pub mod options;
pub mod passwd;
pub mod place;
pub mod recover;
pub mod speed;

use std::io::Write;
use std::path::Path;

use zeroize::Zeroizing;

/// `println!` for a command's report. Rust ignores SIGPIPE, so `println!`
/// panics once the reader has gone (`cipherfs fsck | grep -q ...`); this
/// ends the command quietly instead, with 141, the status a shell shows for
/// a program SIGPIPE ended. The daemon never writes to stdout.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cmd::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// What `outln!` runs.
pub fn write_line(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(exitcode::BROKEN_PIPE));
        }
    }
}

use crate::config::Config;
use crate::crypto::MasterKey;
use crate::exitcode::{self, Failure};
use crate::password;

/// Loads the config of `cipherdir`, with the exit code each problem maps to.
pub fn load_config(cipherdir: &Path) -> Result<Config, Failure> {
    if !cipherdir.exists() {
        return Err(Failure::new(
            exitcode::CIPHERDIR,
            format!(
                "{}: does not exist (`cipherfs init {0}` makes a new cipher directory there)",
                cipherdir.display()
            ),
        ));
    }
    if !cipherdir.is_dir() {
        return Err(Failure::new(
            exitcode::CIPHERDIR,
            format!("{}: is not a directory", cipherdir.display()),
        ));
    }
    let path = crate::config::path_in(cipherdir);
    // Not exists(): a dangling link there is a config that is unusable, not absent.
    if std::fs::symlink_metadata(&path).is_err() {
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
    // Sized once: a Vec that grows frees its old buffers unwiped.
    let mut digits = Zeroizing::new(Vec::with_capacity(text.len()));
    digits.extend(text.iter().copied().filter(|c| c.is_ascii_hexdigit()));
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
    for (b, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        *b = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
    }
    MasterKey::from_bytes(&*bytes).ok_or_else(|| Failure::new(exitcode::USAGE, "bad master key"))
}

fn hex_value(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// The key as hex in groups of 16 digits. Written digit by digit into one
/// buffer sized up front: `format!` would leave each byte's two digits in
/// a small freed allocation.
pub fn master_hex(key: &MasterKey) -> Zeroizing<String> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = Zeroizing::new(String::with_capacity(160));
    for (i, b) in key.expose().iter().enumerate() {
        if i > 0 && i % 8 == 0 {
            s.push('-');
        }
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The most a master key file may hold: the key in hex with any spacing.
pub const MASTER_HEX_MAX: usize = 1024;

/// Unlocks the master key with a password from `source`.
pub fn unlock(config: &Config, source: &password::Source) -> Result<MasterKey, Failure> {
    let pw =
        password::read(source, "Password", false).map_err(|e| Failure::new(exitcode::USAGE, e))?;
    Ok(config.unlock(&pw)?)
}

/// "1 problem", "2 problems".
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
