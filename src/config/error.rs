//! Errors of the config layer, each mapped to a published exit code.

use std::io;
use std::path::PathBuf;

use crate::crypto::CryptoError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("wrong password or corrupted config (the master key did not authenticate)")]
    WrongPasswordOrTampered,
    #[error("the config is format version {0}; this cipherfs reads versions 1 and 2 (a newer cipherfs wrote it?)")]
    UnsupportedVersion(u32),
    #[error("the config needs feature {0:?}, which this cipherfs does not have (a newer cipherfs wrote it?)")]
    UnknownFeature(String),
    #[error("{0}")]
    WeakKdf(String),
    #[error("the config is not valid: {0}")]
    Invalid(String),
    #[error("the config does not parse (truncated or edited by hand?): {0}")]
    Parse(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Unusable {
        path: PathBuf,
        #[source]
        source: crate::untrusted::UntrustedError,
    },
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}
