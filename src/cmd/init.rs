//! `cipherfs init`: a new cipher directory with its config and root IV.

use std::path::Path;

use crate::config::{Config, NameMode, NewConfig};
use crate::crypto::kdf::KdfParams;
use crate::crypto::MasterKey;
use crate::exitcode::{self, Failure};
use crate::password;

pub struct InitOptions {
    /// cipherfs(5)'s format: 2 (names under HCTR2), or 1.
    pub format_version: u32,
    pub cipher: String,
    pub sector_size: u32,
    pub plaintext_names: bool,
    pub kdf: KdfParams,
    pub password: password::Source,
}

/// The `--cipher` choices, as (name, kernel algorithm, key bytes).
pub const CIPHER_CHOICES: &[(&str, &str, usize)] = &[
    ("xts-aes-256", "xts(aes)", 64),
    ("xts-aes-128", "xts(aes)", 32),
    ("essiv-aes-256", "essiv(cbc(aes),sha256)", 32),
    ("gcm-aes-256", "gcm(aes)", 32),
];

/// The kernel algorithm and key length of a `--cipher` choice.
pub fn cipher_choice(name: &str) -> Result<(&'static str, usize), Failure> {
    CIPHER_CHOICES
        .iter()
        .find(|c| c.0 == name)
        .map(|c| (c.1, c.2))
        .ok_or_else(|| Failure::new(exitcode::USAGE, format!("unknown cipher {name:?}")))
}

/// The config parameters init's flags choose.
pub fn new_config(opts: &InitOptions, alg: &str, key_len: usize) -> NewConfig {
    NewConfig {
        format_version: opts.format_version,
        content_cipher: alg.to_string(),
        content_key_bytes: key_len,
        sector_size: opts.sector_size,
        name_mode: if opts.plaintext_names {
            NameMode::Plaintext
        } else {
            NameMode::of_format(opts.format_version)
        },
        kdf_params: opts.kdf,
    }
}

pub fn run(cipherdir: &Path, opts: &InitOptions) -> Result<(), Failure> {
    let (alg, key_len) = cipher_choice(&opts.cipher)?;
    // A missing directory is made (its parent must exist), as mkdir would.
    let create = match std::fs::metadata(cipherdir) {
        Ok(m) if m.is_dir() => false,
        Ok(_) => {
            return Err(Failure::new(
                exitcode::CIPHERDIR,
                format!("{}: exists and is not a directory", cipherdir.display()),
            ))
        }
        Err(_) => {
            let parent = cipherdir
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !parent.is_dir() {
                return Err(Failure::new(
                    exitcode::CIPHERDIR,
                    format!(
                        "{}: does not exist, and neither does {} (create it with mkdir -p)",
                        cipherdir.display(),
                        parent.display()
                    ),
                ));
            }
            true
        }
    };
    let non_empty = !create
        && std::fs::read_dir(cipherdir)
            .map_err(|e| {
                Failure::new(exitcode::CIPHERDIR, format!("{}: {e}", cipherdir.display()))
            })?
            .next()
            .is_some();
    if non_empty {
        return Err(Failure::new(
            exitcode::CIPHERDIR,
            format!(
                "{}: not empty; init needs an empty directory",
                cipherdir.display()
            ),
        ));
    }
    let new = new_config(opts, alg, key_len);
    let pw = password::read(&opts.password, "Choose a password", true)
        .map_err(|e| Failure::new(exitcode::USAGE, e))?;
    let master = MasterKey::generate().map_err(|e| Failure::new(exitcode::OTHER, e.to_string()))?;
    let config = Config::create(&new, &pw, &master)?;
    if create {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(cipherdir)
            .map_err(|e| {
                Failure::new(exitcode::CIPHERDIR, format!("{}: {e}", cipherdir.display()))
            })?;
    }
    if !opts.plaintext_names {
        let dir = std::fs::File::open(cipherdir)
            .map_err(|e| Failure::new(exitcode::CIPHERDIR, e.to_string()))?;
        crate::fs::write_diriv(&dir).map_err(|e| {
            Failure::new(
                exitcode::CIPHERDIR,
                format!("cannot write the directory IV: {e:?}"),
            )
        })?;
    }
    config.save(cipherdir)?;
    Ok(())
}
