//! `cipherfs backends`: per algorithm, which backends pass their
//! known-answer tests here, the kernel driver behind each, and what
//! `--backend auto` picks and why.

use super::count;
use super::outln;
use crate::exitcode::{self, Failure};
use crate::skcipher::{self, alg, selftest, Backend, BackendChoice, Skcipher, SkcipherError};

pub fn run(algs: &[String]) -> Result<(), Failure> {
    let names: Vec<String> = if algs.is_empty() {
        skcipher::ALGORITHMS
            .iter()
            .map(|a| a.name)
            .chain(crate::aead::AEAD_ALGORITHMS.iter().map(|a| a.name))
            .map(str::to_string)
            .collect()
    } else {
        algs.to_vec()
    };
    outln!(
        "CPU AES instructions: {}",
        if aes::hardware_accelerated() {
            "yes"
        } else {
            "no"
        }
    );
    let mut failed = 0;
    for name in &names {
        if let Ok(aead) = crate::aead::lookup(name) {
            failed += aead_report(aead);
            continue;
        }
        let info = alg::lookup(name).map_err(|e| Failure::new(exitcode::USAGE, e.to_string()))?;
        outln!(
            "{name}: ivsize {} blocksize {} keys {:?} bytes",
            info.ivsize,
            info.blocksize,
            info.key_sizes
        );
        for backend in Backend::ALL {
            match selftest::run(backend, name) {
                Ok(n) => outln!(
                    "  {:<6} ok, {} passed; {}",
                    backend.name(),
                    count(n, "known-answer vector", "known-answer vectors"),
                    driver(name, backend, info)
                ),
                Err(e @ SkcipherError::SelfTestFailed { .. }) => {
                    failed += 1;
                    outln!("  {:<6} FAILED: {e}", backend.name());
                }
                Err(e) => outln!("  {:<6} unavailable: {e}", backend.name()),
            }
        }
        match skcipher::select(BackendChoice::Auto, name) {
            Ok(sel) => outln!("  auto   -> {} ({})", sel.backend, sel.reason),
            Err(e) => outln!("  auto   -> error: {e}"),
        }
    }
    if failed > 0 {
        return Err(Failure::new(
            exitcode::SELFTEST,
            format!(
                "{} failed its known-answer tests (above); it is never used",
                count(failed, "backend", "backends")
            ),
        ));
    }
    Ok(())
}

/// The driver a backend runs the algorithm with (the kernel's cra_driver_name for afalg).
fn driver(name: &str, backend: Backend, info: &alg::AlgInfo) -> String {
    let len = *info.key_sizes.last().unwrap_or(&32);
    let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
    Skcipher::alloc(name, backend)
        .ok()
        .and_then(|t| t.setkey(&key).ok().and(t.driver()))
        .unwrap_or_default()
}

/// The same report for an AEAD algorithm; returns how many backends failed.
fn aead_report(info: &crate::aead::AeadAlgInfo) -> usize {
    outln!(
        "{} (aead): ivsize {} authsize {} keys {:?} bytes",
        info.name,
        info.ivsize,
        info.maxauthsize,
        info.key_sizes
    );
    let mut failed = 0;
    for backend in Backend::ALL {
        if let Err(e) = crate::aead::Aead::alloc(info.name, backend) {
            outln!("  {:<6} unavailable: {e}", backend.name());
            continue;
        }
        match crate::aead::selftest::run(backend) {
            Ok(n) => {
                outln!(
                    "  {:<6} ok, {} passed",
                    backend.name(),
                    count(n, "known-answer vector", "known-answer vectors")
                );
            }
            Err(e) => {
                failed += 1;
                outln!("  {:<6} FAILED: {e}", backend.name());
            }
        }
    }
    match skcipher::select(BackendChoice::Auto, info.name) {
        Ok(sel) => outln!("  auto   -> {} ({})", sel.backend, sel.reason),
        Err(e) => outln!("  auto   -> error: {e}"),
    }
    failed
}
