//! `cipherfs recover` and the master key as proof: reading a master key
//! file (or the key on standard input), checking that a key belongs to a
//! cipher directory by decrypting its names, and writing a new config for
//! a directory whose config is lost.

use std::path::Path;

use zeroize::Zeroizing;

use super::init::{cipher_choice, new_config, InitOptions};
use super::parse_master_hex;
use crate::config::{path_in, Config, NameMode};
use crate::content::{FileHeader, HEADER_LEN};
use crate::crypto::MasterKey;
use crate::exitcode::{self, Failure};
use crate::names::{is_internal, parse_long_name, NameCipher, DIRIV_LEN, DIRIV_NAME};
use crate::names::{LONGNAME_MAX, LONGNAME_PREFIX, LONGNAME_SUFFIX};
use crate::skcipher::Backend;
use crate::{password, untrusted};

/// The master key from FILE (private to its owner), or stdin for `-`.
pub fn read_master_key(path: &Path) -> Result<MasterKey, Failure> {
    let text = if path.as_os_str() == "-" {
        password::read_stdin(super::MASTER_HEX_MAX, "master key")
            .map_err(|e| Failure::new(exitcode::USAGE, e))?
    } else {
        password::read_private_file(path, "master key file", super::MASTER_HEX_MAX, 0o077)
            .map_err(|e| Failure::new(exitcode::USAGE, e))?
    };
    parse_master_hex(&text)
}

/// Checks that `master` is the key of the cipher directory: the names at its
/// root must decrypt (a wrong key turns each into garbage that fails the
/// padding check), and a file's header must read as one. Says what it
/// checked.
pub fn check_key(
    cipherdir: &Path,
    master: &MasterKey,
    mode: NameMode,
    format_version: u32,
) -> Result<String, Failure> {
    let wrong = |why: String| Failure::new(exitcode::WRONG_PASSWORD, why);
    let dir = untrusted::open_dir(cipherdir)
        .map_err(|e| Failure::new(exitcode::CIPHERDIR, format!("{}: {e}", cipherdir.display())))?;
    let listed = rustix::fs::openat(
        &dir,
        ".",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .and_then(|fd| {
        rustix::fs::Dir::read_from(&fd)?
            .map(|e| e.map(|e| String::from_utf8_lossy(e.file_name().to_bytes()).into_owned()))
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| Failure::new(exitcode::CIPHERDIR, format!("{}: {e}", cipherdir.display())))?;
    let entries: Vec<&String> = listed
        .iter()
        .filter(|n| *n != "." && *n != ".." && !is_internal(n))
        .collect();
    let mut checked = Vec::new();
    if mode != NameMode::Plaintext && !entries.is_empty() {
        let names = NameCipher::new(master, mode, Backend::Soft)
            .map_err(|e| Failure::new(exitcode::OTHER, e.to_string()))?;
        let iv = untrusted::read_exact::<DIRIV_LEN>(&dir, DIRIV_NAME)
            .map_err(|e| Failure::new(exitcode::CIPHERDIR, format!("{DIRIV_NAME}: {e}")))?;
        let decrypts = |entry: &str| -> bool {
            let encoded = if entry.starts_with(LONGNAME_PREFIX) {
                let companion = format!("{entry}{LONGNAME_SUFFIX}");
                match untrusted::read_bounded(&dir, companion.as_str(), LONGNAME_MAX)
                    .map_err(|e| e.to_string())
                    .and_then(|full| parse_long_name(&full, entry))
                {
                    Ok(full) => full,
                    Err(_) => return false,
                }
            } else {
                entry.to_string()
            };
            // Names are not authenticated: under a wrong key a name often
            // still passes the padding check, as random bytes. It is then
            // almost never UTF-8 (about 2^-16 for a 16-byte name), while real
            // names almost always are.
            names
                .decrypt(&encoded, &iv)
                .is_ok_and(|n| std::str::from_utf8(&n).is_ok())
        };
        let good = entries.iter().filter(|e| decrypts(e)).count();
        if good * 2 <= entries.len() {
            return Err(wrong(format!(
                "under this master key only {good} of the {} names at the root of {} decrypt \
                 to readable names: it is not this directory's key (or the format flags \
                 are wrong: --format-version 1 for a directory made in format 1, \
                 --plaintext-names)",
                entries.len(),
                cipherdir.display()
            )));
        }
        checked.push(format!(
            "{good} of {} names at the root decrypt",
            entries.len()
        ));
    }
    let header = entries.iter().find_map(|e| {
        let mut f = untrusted::open_regular(&dir, e.as_str()).ok()?;
        let mut b = [0u8; HEADER_LEN];
        std::io::Read::read_exact(&mut f, &mut b).ok()?;
        Some(FileHeader::parse(&b, format_version as u16).is_ok())
    });
    match header {
        Some(true) => checked.push("a file header reads".into()),
        Some(false) => return Err(wrong("a file at the root has no valid header".into())),
        None => {}
    }
    if checked.is_empty() {
        return Err(Failure::new(
            exitcode::CIPHERDIR,
            format!(
                "{}: nothing at its root to check the key against (no names, no files)",
                cipherdir.display()
            ),
        ));
    }
    Ok(checked.join("; "))
}

/// Writes a new config for `cipherdir`, whose config is lost, from the
/// master key in `key_file`, the format in `opts` and a new password; only
/// after the key was checked against the directory.
pub fn run(cipherdir: &Path, key_file: &Path, opts: &InitOptions) -> Result<(), Failure> {
    if !cipherdir.is_dir() {
        return Err(Failure::new(
            exitcode::CIPHERDIR,
            format!("{}: not a directory", cipherdir.display()),
        ));
    }
    if std::fs::symlink_metadata(path_in(cipherdir)).is_ok() {
        return Err(Failure::new(
            exitcode::CONFIG,
            format!(
                "{}: a cipherfs.conf is there; to set a new password without the old one, \
                 use cipherfs passwd --masterkey-file",
                cipherdir.display()
            ),
        ));
    }
    let master = read_master_key(key_file)?;
    let (alg, key_len) = cipher_choice(&opts.cipher)?;
    let new = new_config(opts, alg, key_len);
    let checked = check_key(cipherdir, &master, new.name_mode, new.format_version)?;
    let pw: Zeroizing<Vec<u8>> = password::read(&opts.password, "New password", true)
        .map_err(|e| Failure::new(exitcode::USAGE, e))?;
    Config::create(&new, &pw, &master)?.save(cipherdir)?;
    eprintln!(
        "cipherfs: {} has a new config ({checked}); mount it with the new password",
        cipherdir.display()
    );
    Ok(())
}
