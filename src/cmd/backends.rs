//! `cipherfs backends`: per algorithm, which backends pass their
//! known-answer tests here, the kernel driver behind each, and what
//! `--backend auto` picks and why.

use super::count;
use crate::exitcode::{self, Failure};
use crate::skcipher::{self, alg, selftest, Backend, BackendChoice, Skcipher, SkcipherError};

pub fn run(algs: &[String]) -> Result<(), Failure> {
    let names: Vec<String> = if algs.is_empty() {
        skcipher::ALGORITHMS
            .iter()
            .map(|a| a.name.to_string())
            .collect()
    } else {
        algs.to_vec()
    };
    println!(
        "CPU AES instructions: {}",
        if aes::hardware_accelerated() {
            "yes"
        } else {
            "no"
        }
    );
    let mut failed = 0;
    for name in &names {
        let info = alg::lookup(name).map_err(|e| Failure::new(exitcode::USAGE, e.to_string()))?;
        println!(
            "{name}: ivsize {} blocksize {} keys {:?} bytes",
            info.ivsize, info.blocksize, info.key_sizes
        );
        for backend in Backend::ALL {
            match selftest::run(backend, name) {
                Ok(n) => println!(
                    "  {:<6} ok, {} passed; {}",
                    backend.name(),
                    count(n, "known-answer vector", "known-answer vectors"),
                    driver(name, backend, info)
                ),
                Err(e @ SkcipherError::SelfTestFailed { .. }) => {
                    failed += 1;
                    println!("  {:<6} FAILED: {e}", backend.name());
                }
                Err(e) => println!("  {:<6} unavailable: {e}", backend.name()),
            }
        }
        match skcipher::select(BackendChoice::Auto, name) {
            Ok(sel) => println!("  auto   -> {} ({})", sel.backend, sel.reason),
            Err(e) => println!("  auto   -> error: {e}"),
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
