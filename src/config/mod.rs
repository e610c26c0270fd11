//! `CIPHERDIR/cipherfs.conf`: format version, content cipher, sector size,
//! name mode, feature flags, KDF parameters and salt, and the master key
//! wrapped with AES-256-GCM under the Argon2id key. Every field except the
//! wrapped key itself is the GCM associated data, so a wrong password and any
//! edit of the config both fail the same authentication. GCM cannot tell those
//! two apart, and neither do we; a config that does not parse at all is a
//! different, clearer error.
//!
//! Written as new file, fsync, rename, fsync of the directory, so a crash
//! leaves either the old config or the new one. The file is mode 0400.

mod error;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::kdf::KdfParams;
use crate::crypto::{random_array, MasterKey, MASTER_KEY_LEN};
pub use error::ConfigError;

pub const CONFIG_NAME: &str = "cipherfs.conf";
/// Where `save` writes a new config before renaming it over the old one.
pub const CONFIG_TMP_NAME: &str = ".cipherfs.conf.tmp";
/// The format `init` makes (names under HCTR2, cipherfs(5)).
pub const FORMAT_VERSION: u32 = 2;
/// Every format a cipher directory may have; all keep mounting.
pub const FORMAT_VERSIONS: &[u32] = &[1, 2];
/// The largest config cipherfs reads. `init` writes about 700 bytes.
pub const CONFIG_MAX: usize = 64 * 1024;

/// Feature flags this version understands. A config naming any other is
/// refused: it was written by a newer cipherfs whose format we cannot honour.
pub const KNOWN_FEATURES: &[&str] = &["hkdf-file-keys", "dir-iv", "long-names", "plaintext-names"];

/// The content ciphers a config may name, with their key lengths.
pub const CONTENT_CIPHERS: &[(&str, usize)] = &[
    ("xts(aes)", 64),
    ("xts(aes)", 32),
    ("essiv(cbc(aes),sha256)", 32),
    ("gcm(aes)", 32),
];

/// Content ciphers only format 2 may name (format 1 predates them).
pub const FORMAT_2_CIPHERS: &[&str] = &["gcm(aes)"];
pub const SECTOR_SIZES: &[u32] = &[512, 1024, 2048, 4096];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameMode {
    /// Format 1: AES-256-CTS-CBC with each directory's IV, base64url.
    CtsCbc,
    /// Format 2: HCTR2 under a key per directory, base64url (the default).
    Hctr2,
    /// Names stored as they are (debugging only).
    Plaintext,
}

impl NameMode {
    /// As the config spells it (cipherfs(5)).
    pub fn spelling(self) -> &'static str {
        match self {
            NameMode::CtsCbc => "cts-cbc",
            NameMode::Hctr2 => "hctr2",
            NameMode::Plaintext => "plaintext",
        }
    }

    /// The encrypted names of a format (plaintext names are a choice).
    pub fn of_format(version: u32) -> Self {
        if version == 1 {
            NameMode::CtsCbc
        } else {
            NameMode::Hctr2
        }
    }
}

/// The fields that are authenticated (everything but the wrapped key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub format_version: u32,
    pub content_cipher: String,
    pub content_key_bytes: usize,
    pub sector_size: u32,
    pub name_mode: NameMode,
    pub feature_flags: Vec<String>,
    pub kdf: String,
    pub kdf_params: KdfParams,
    /// Base64, 16 bytes.
    pub kdf_salt: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WrappedKey {
    /// Base64, 12 bytes.
    nonce: String,
    /// Base64: the 64-byte master key and the 16-byte GCM tag.
    ciphertext: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    #[serde(flatten)]
    params: Params,
    wrapped_master_key: WrappedKey,
}

/// A loaded, validated config; the master key stays wrapped until `unlock`.
#[derive(Clone, Debug)]
pub struct Config {
    pub params: Params,
    wrapped: WrappedKey,
}

/// What `init` chooses.
#[derive(Clone, Debug)]
pub struct NewConfig {
    pub format_version: u32,
    pub content_cipher: String,
    pub content_key_bytes: usize,
    pub sector_size: u32,
    pub name_mode: NameMode,
    pub kdf_params: KdfParams,
}

impl Default for NewConfig {
    fn default() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            content_cipher: "xts(aes)".into(),
            content_key_bytes: 64,
            sector_size: 4096,
            name_mode: NameMode::Hctr2,
            kdf_params: KdfParams::DEFAULT,
        }
    }
}

pub fn path_in(cipherdir: &Path) -> PathBuf {
    cipherdir.join(CONFIG_NAME)
}

fn unb64(field: &'static str, s: &str, len: usize) -> Result<Vec<u8>, ConfigError> {
    let v = B64
        .decode(s)
        .map_err(|_| ConfigError::Invalid(format!("{field} is not valid base64")))?;
    if v.len() != len {
        return Err(ConfigError::Invalid(format!(
            "{field} must be {len} bytes, not {}",
            v.len()
        )));
    }
    Ok(v)
}

impl Params {
    /// Everything a config must satisfy before any key is derived from it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !FORMAT_VERSIONS.contains(&self.format_version) {
            return Err(ConfigError::UnsupportedVersion(self.format_version));
        }
        if self.name_mode != NameMode::Plaintext
            && self.name_mode != NameMode::of_format(self.format_version)
        {
            return Err(ConfigError::Invalid(format!(
                "name mode {} is not one of format {}",
                self.name_mode.spelling(),
                self.format_version
            )));
        }
        if let Some(f) = self
            .feature_flags
            .iter()
            .find(|f| !KNOWN_FEATURES.contains(&f.as_str()))
        {
            return Err(ConfigError::UnknownFeature(f.clone()));
        }
        if !CONTENT_CIPHERS.contains(&(self.content_cipher.as_str(), self.content_key_bytes)) {
            return Err(ConfigError::Invalid(format!(
                "content cipher {:?} with a {}-byte key is not one cipherfs supports",
                self.content_cipher, self.content_key_bytes
            )));
        }
        if self.format_version < 2 && FORMAT_2_CIPHERS.contains(&self.content_cipher.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "content cipher {} needs format 2; this config says format {}",
                self.content_cipher, self.format_version
            )));
        }
        if !SECTOR_SIZES.contains(&self.sector_size) {
            return Err(ConfigError::Invalid(format!(
                "sector size {} is not one of {SECTOR_SIZES:?}",
                self.sector_size
            )));
        }
        if self.kdf != "argon2id" {
            return Err(ConfigError::Invalid(format!("unknown KDF {:?}", self.kdf)));
        }
        self.kdf_params.check().map_err(ConfigError::WeakKdf)?;
        unb64("kdf_salt", &self.kdf_salt, 16)?;
        Ok(())
    }

    fn aad(&self) -> Result<Vec<u8>, ConfigError> {
        serde_json::to_vec(self).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    fn wrapping_key(&self, password: &[u8]) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
        let salt = unb64("kdf_salt", &self.kdf_salt, 16)?;
        Ok(self.kdf_params.derive(password, &salt)?)
    }
}

impl Config {
    /// Makes a config for a new master key wrapped under `password`.
    pub fn create(
        new: &NewConfig,
        password: &[u8],
        master: &MasterKey,
    ) -> Result<Self, ConfigError> {
        let mut flags = vec![
            "hkdf-file-keys".to_string(),
            "dir-iv".to_string(),
            "long-names".to_string(),
        ];
        if new.name_mode == NameMode::Plaintext {
            flags.push("plaintext-names".into());
        }
        let params = Params {
            format_version: new.format_version,
            content_cipher: new.content_cipher.clone(),
            content_key_bytes: new.content_key_bytes,
            sector_size: new.sector_size,
            name_mode: new.name_mode,
            feature_flags: flags,
            kdf: "argon2id".into(),
            kdf_params: new.kdf_params,
            kdf_salt: B64.encode(random_array::<16>()?),
        };
        params.validate()?;
        let wrapped = wrap(&params, password, master)?;
        Ok(Self { params, wrapped })
    }

    /// Re-wraps the same master key under a new password with a fresh salt.
    pub fn rewrap(&self, master: &MasterKey, new_password: &[u8]) -> Result<Self, ConfigError> {
        let mut params = self.params.clone();
        params.kdf_salt = B64.encode(random_array::<16>()?);
        let wrapped = wrap(&params, new_password, master)?;
        Ok(Self { params, wrapped })
    }

    /// Derives the wrapping key from `password` and unwraps the master key.
    pub fn unlock(&self, password: &[u8]) -> Result<MasterKey, ConfigError> {
        let key = self.params.wrapping_key(password)?;
        let nonce = unb64("wrapped_master_key.nonce", &self.wrapped.nonce, 12)?;
        let ct = unb64(
            "wrapped_master_key.ciphertext",
            &self.wrapped.ciphertext,
            MASTER_KEY_LEN + 16,
        )?;
        let aad = self.params.aad()?;
        let gcm = Aes256Gcm::new_from_slice(key.as_ref())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let plain = Zeroizing::new(
            gcm.decrypt(
                &gcm_nonce(&nonce)?,
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| ConfigError::WrongPasswordOrTampered)?,
        );
        MasterKey::from_bytes(&plain).ok_or_else(|| {
            ConfigError::Invalid("the wrapped master key has the wrong length".into())
        })
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let disk: OnDisk =
            serde_json::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        disk.params.validate()?;
        Ok(Self {
            params: disk.params,
            wrapped: disk.wrapped_master_key,
        })
    }

    pub fn to_json(&self) -> Result<String, ConfigError> {
        let disk = OnDisk {
            params: self.params.clone(),
            wrapped_master_key: self.wrapped.clone(),
        };
        let mut s =
            serde_json::to_string_pretty(&disk).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        s.push('\n');
        Ok(s)
    }

    /// Reads the config through the one safe opener (no links, no FIFOs,
    /// a regular file of at most CONFIG_MAX bytes) and validates it.
    pub fn load(cipherdir: &Path) -> Result<Self, ConfigError> {
        use crate::untrusted::{self, UntrustedError};
        let path = path_in(cipherdir);
        let bytes = untrusted::open_dir(cipherdir)
            .and_then(|dir| untrusted::read_bounded(&dir, CONFIG_NAME, CONFIG_MAX))
            .map_err(|e| match e {
                UntrustedError::Os(errno) => ConfigError::Io {
                    path: path.clone(),
                    source: errno.into(),
                },
                source => ConfigError::Unusable {
                    path: path.clone(),
                    source,
                },
            })?;
        let in_path = |what: String| ConfigError::Parse(format!("{what} (in {})", path.display()));
        let text = std::str::from_utf8(&bytes).map_err(|_| in_path("not UTF-8".into()))?;
        Self::parse(text).map_err(|e| match e {
            ConfigError::Parse(what) => in_path(what),
            other => other,
        })
    }

    /// Writes the config atomically (new file, fsync, rename, fsync dir), mode 0400.
    pub fn save(&self, cipherdir: &Path) -> Result<(), ConfigError> {
        let path = path_in(cipherdir);
        let tmp = cipherdir.join(CONFIG_TMP_NAME);
        let io = |p: &Path| {
            let p = p.to_path_buf();
            move |e| ConfigError::Io { path: p, source: e }
        };
        let _ = fs::remove_file(&tmp);
        // create_new is O_EXCL: a link planted under the temporary name
        // is never followed; NOFOLLOW says so twice.
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o400)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(self.to_json()?.as_bytes()).map_err(io(&tmp))?;
        crate::crashpoint::at("config-wrote-temp");
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        crate::crashpoint::at("config-synced-temp");
        fs::rename(&tmp, &path).map_err(io(&path))?;
        crate::crashpoint::at("config-renamed");
        File::open(cipherdir)
            .and_then(|d| d.sync_all())
            .map_err(io(cipherdir))?;
        Ok(())
    }
}

fn gcm_nonce(b: &[u8]) -> Result<Nonce<aes_gcm::aead::consts::U12>, ConfigError> {
    Nonce::try_from(b).map_err(|_| ConfigError::Invalid("the GCM nonce must be 12 bytes".into()))
}

fn wrap(params: &Params, password: &[u8], master: &MasterKey) -> Result<WrappedKey, ConfigError> {
    let key = params.wrapping_key(password)?;
    let nonce = random_array::<12>()?;
    let aad = params.aad()?;
    let gcm =
        Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let ct = gcm
        .encrypt(
            &gcm_nonce(&nonce)?,
            Payload {
                msg: master.expose(),
                aad: &aad,
            },
        )
        .map_err(|_| ConfigError::Invalid("AES-GCM refused to wrap the key".into()))?;
    Ok(WrappedKey {
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(ct),
    })
}
