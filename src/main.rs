//! The `cipherfs` command: parse, set up logging, run, map errors to exit codes.

mod cli;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cipherfs::skcipher::{self, alg, selftest, Backend, BackendChoice, Skcipher};
use cipherfs::speed;
use cli::{Cli, Command};

/// Exit codes are a published contract (cipherfs(1)); never renumber them.
const EXIT_USAGE: u8 = 2;
const EXIT_CRYPTO: u8 = 20;

fn init_logging(cli: &Cli) {
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .init();
}

fn parse_case(s: &str) -> Result<(String, usize), String> {
    let (name, key) = match s.rsplit_once(':') {
        Some((n, k)) => (
            n,
            Some(
                k.parse::<usize>()
                    .map_err(|_| format!("bad key length in {s:?}"))?,
            ),
        ),
        None => (s, None),
    };
    let info = alg::lookup(name).map_err(|e| e.to_string())?;
    let key = key.unwrap_or(*info.key_sizes.last().unwrap_or(&32));
    Ok((name.to_string(), key))
}

fn cmd_speed(algs: &[String], backend: &str, size: usize, seconds: f64) -> Result<(), String> {
    let cases = if algs.is_empty() {
        speed::DEFAULT_CASES
            .iter()
            .map(|(a, k)| (a.to_string(), *k))
            .collect()
    } else {
        algs.iter()
            .map(|s| parse_case(s))
            .collect::<Result<Vec<_>, _>>()?
    };
    let backends = match backend {
        "soft" => vec![Backend::Soft],
        "afalg" => vec![Backend::Afalg],
        _ => Backend::ALL.to_vec(),
    };
    if !(0.01..=60.0).contains(&seconds) {
        return Err("--seconds must be between 0.01 and 60".into());
    }
    speed::run(&speed::Options {
        cases,
        backends,
        size,
        duration: Duration::from_secs_f64(seconds),
    });
    Ok(())
}

fn cmd_backends(algs: &[String]) -> Result<bool, String> {
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
    let mut all_ok = true;
    for name in &names {
        let info = alg::lookup(name).map_err(|e| e.to_string())?;
        println!(
            "{name}: ivsize {} blocksize {} keys {:?} bytes",
            info.ivsize, info.blocksize, info.key_sizes
        );
        for backend in Backend::ALL {
            match selftest::run(backend, name) {
                Ok(n) => {
                    let driver = Skcipher::alloc(name, backend)
                        .ok()
                        .and_then(|t| t.setkey(&selftest_key(info)).ok().and(t.driver()))
                        .unwrap_or_default();
                    println!(
                        "  {:<6} ok, {n} known-answer vectors passed; {driver}",
                        backend.name()
                    );
                }
                Err(e @ skcipher::SkcipherError::SelfTestFailed { .. }) => {
                    all_ok = false;
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
    Ok(all_ok)
}

fn selftest_key(info: &alg::AlgInfo) -> Vec<u8> {
    let len = *info.key_sizes.last().unwrap_or(&32);
    (0..len).map(|i| i as u8).collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let result = match &cli.command {
        Command::Speed {
            algs,
            backend,
            size,
            seconds,
        } => cmd_speed(algs, backend, *size, *seconds).map(|_| true),
        Command::Backends { algs } => cmd_backends(algs),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_CRYPTO),
        Err(e) => {
            eprintln!("cipherfs: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
