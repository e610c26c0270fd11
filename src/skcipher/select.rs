//! Resolving `--backend auto|soft|afalg` to a backend that works here, with the
//! reason, so the user can see what was picked and why.
//!
//! The `auto` rule:
//! 1. If the CPU has AES instructions, `soft`: the in-process code uses them
//!    directly, with no system call and no copy per sector, so it is faster.
//! 2. Otherwise `afalg` if the kernel offers the algorithm through AF_ALG, the
//!    kernel's driver for it is not a generic software one (a crypto engine or
//!    an accelerated driver), and the known-answer self-test passes through it.
//! 3. Otherwise `soft` (constant-time bitsliced AES).
//!
//! So `auto` never picks `afalg` where afalg does not work.
//!
//! Names (format 2's `hctr2(aes)`) are selected on their own with the same
//! rule, except that an `afalg` request falls back to `soft` for names where
//! the kernel lacks the algorithm (Debian's kernels have no HCTR2): the
//! contents stay on `afalg`, and the mount log says so.

use super::afalg::proc_crypto;
use super::{selftest, Backend, BackendChoice, SkcipherError};

#[derive(Debug, Clone)]
pub struct Selection {
    pub backend: Backend,
    pub reason: String,
    /// For afalg: the kernel driver serving the algorithm, from /proc/crypto.
    pub kernel_driver: Option<String>,
}

fn afalg_checked(alg: &str) -> Result<Option<String>, SkcipherError> {
    match crate::aead::lookup(alg) {
        Ok(info) => aead_afalg_checked(info.name)?,
        Err(_) => {
            selftest::run(Backend::Afalg, alg)?;
        }
    }
    Ok(proc_crypto::driver_for(alg).map(|e| e.driver))
}

/// An AEAD algorithm (the AEAD sector mode's `gcm(aes)`) is chosen by the
/// same rule, with the AEAD layer's allocation and self-test.
fn aead_afalg_checked(name: &'static str) -> Result<(), SkcipherError> {
    use crate::aead::{Aead, AeadError};
    Aead::alloc(name, Backend::Afalg).map_err(|e| match e {
        AeadError::AfAlgUnsupported => SkcipherError::AfAlgUnsupported,
        AeadError::KernelLacksAlgorithm(_) => SkcipherError::KernelLacksAlgorithm {
            name: name.to_string(),
        },
        e => SkcipherError::Kernel {
            op: "bind",
            source: std::io::Error::other(e.to_string()),
        },
    })?;
    crate::aead::selftest::run(Backend::Afalg).map_err(|detail| SkcipherError::SelfTestFailed {
        backend: Backend::Afalg.name(),
        alg: name,
        detail,
    })?;
    Ok(())
}

pub fn select(choice: BackendChoice, alg: &str) -> Result<Selection, SkcipherError> {
    if crate::aead::lookup(alg).is_err() {
        super::alg::lookup(alg)?;
    }
    match choice {
        BackendChoice::Soft => Ok(Selection {
            backend: Backend::Soft,
            reason: "requested".into(),
            kernel_driver: None,
        }),
        BackendChoice::Afalg => {
            let kernel_driver = afalg_checked(alg)?;
            Ok(Selection {
                backend: Backend::Afalg,
                reason: "requested; known-answer self-test passed".into(),
                kernel_driver,
            })
        }
        BackendChoice::Auto => Ok(auto(alg)),
    }
}

fn auto(alg: &str) -> Selection {
    let soft = |reason: String| Selection {
        backend: Backend::Soft,
        reason,
        kernel_driver: None,
    };
    if aes::hardware_accelerated() {
        return soft("auto: the CPU has AES instructions, which the in-process backend uses without a system call per sector".into());
    }
    match afalg_checked(alg) {
        Ok(Some(driver)) if !driver.contains("generic") => Selection {
            backend: Backend::Afalg,
            reason: format!("auto: no AES instructions in the CPU, and the kernel serves {alg} with {driver}; self-test passed"),
            kernel_driver: Some(driver),
        },
        Ok(driver) => soft(format!(
            "auto: the kernel's {alg} is software too ({}), so in-process is faster",
            driver.unwrap_or_else(|| "driver unknown".into())
        )),
        Err(e) => soft(format!("auto: afalg unusable here ({e})")),
    }
}

/// The backend for a second algorithm next to the content's (format 2's
/// names): as `select`, but where `afalg` was asked for and the kernel lacks
/// `alg`, `soft`, with a reason that says so.
pub fn select_beside(choice: BackendChoice, alg: &str) -> Result<Selection, SkcipherError> {
    match select(choice, alg) {
        Err(e @ SkcipherError::KernelLacksAlgorithm { .. }) if choice == BackendChoice::Afalg => {
            Ok(Selection {
                backend: Backend::Soft,
                reason: format!("{e}, so it runs in-process while the contents use afalg"),
                kernel_driver: None,
            })
        }
        other => other,
    }
}
