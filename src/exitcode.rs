//! Exit codes: a published contract (cipherfs(1), EXIT STATUS). Never
//! renumber one; add new ones at new numbers.

pub const OK: u8 = 0;
/// Anything not listed below (an I/O error, for example).
pub const OTHER: u8 = 1;
/// The command line was wrong.
pub const USAGE: u8 = 2;
/// Wrong password, or a config whose authenticated fields were changed.
pub const WRONG_PASSWORD: u8 = 10;
/// The config is missing, does not parse, or is one this version refuses.
pub const CONFIG: u8 = 11;
/// The cipher directory is missing, not a directory, or (for init) not empty.
pub const CIPHERDIR: u8 = 12;
/// The mount point is missing, not a directory, or the mount failed there.
pub const MOUNTPOINT: u8 = 13;
/// A kernel feature is missing: /dev/fuse, fusermount3, or AF_ALG for --backend afalg.
pub const KERNEL_FEATURE: u8 = 14;
/// `fsck` found problems, and did not repair them all.
pub const DAMAGED: u8 = 15;
/// A cipher backend failed its known-answer self-test.
pub const SELFTEST: u8 = 20;
/// The reader of a report stopped reading (`cipherfs fsck | head -1`): what
/// a shell shows for a program SIGPIPE ended.
pub const BROKEN_PIPE: u8 = 141;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<crate::config::ConfigError> for Failure {
    fn from(e: crate::config::ConfigError) -> Self {
        use crate::config::ConfigError as E;
        let code = match &e {
            E::WrongPasswordOrTampered => WRONG_PASSWORD,
            E::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => CONFIG,
            E::Io { .. } | E::Crypto(_) => OTHER,
            _ => CONFIG,
        };
        Failure::new(code, e.to_string())
    }
}

impl From<crate::skcipher::SkcipherError> for Failure {
    fn from(e: crate::skcipher::SkcipherError) -> Self {
        use crate::skcipher::SkcipherError as E;
        let code = match &e {
            E::SelfTestFailed { .. } => SELFTEST,
            E::AfAlgUnsupported | E::KernelLacksAlgorithm { .. } => KERNEL_FEATURE,
            _ => OTHER,
        };
        Failure::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use crate::skcipher::SkcipherError;

    #[test]
    fn each_failure_maps_to_its_published_code() {
        let st = SkcipherError::SelfTestFailed {
            backend: "afalg",
            alg: "xts(aes)",
            detail: "mismatch".into(),
        };
        assert_eq!(Failure::from(st).code, SELFTEST);
        assert_eq!(
            Failure::from(SkcipherError::AfAlgUnsupported).code,
            KERNEL_FEATURE
        );
        assert_eq!(
            Failure::from(ConfigError::WrongPasswordOrTampered).code,
            WRONG_PASSWORD
        );
        assert_eq!(
            Failure::from(ConfigError::UnsupportedVersion(2)).code,
            CONFIG
        );
        let codes = [
            OK,
            OTHER,
            USAGE,
            WRONG_PASSWORD,
            CONFIG,
            CIPHERDIR,
            MOUNTPOINT,
            KERNEL_FEATURE,
            SELFTEST,
        ];
        let mut sorted = codes.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), codes.len(), "exit codes must be distinct");
    }
}
