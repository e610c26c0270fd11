//! Command-line definitions (clap). Behaviour lives in the modules they call.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cipherfs",
    version,
    about = "Encrypted overlay filesystem with in-process or in-kernel (AF_ALG) crypto",
    long_about = "cipherfs encrypts files sector by sector (xts(aes) or essiv(cbc(aes),sha256)) \
through a cipher layer modelled on the Linux kernel's skcipher API, with two backends: \
soft (in-process AES-NI/VAES) and afalg (the running kernel's crypto through AF_ALG sockets).\n\n\
This version has the cipher layer and its tools (speed, backends); creating and \
mounting encrypted directories (init, mount) is not implemented yet.\n\n\
See cipherfs(1)."
)]
pub struct Cli {
    /// More log output (repeat for more); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Measure cipher throughput on every backend that works here.
    Speed {
        /// Algorithm to measure, as NAME or NAME:KEYBYTES (repeatable); default:
        /// xts(aes):64, xts(aes):32, essiv(cbc(aes),sha256):32, cbc(aes):32.
        #[arg(long = "alg", value_name = "NAME[:KEYBYTES]")]
        algs: Vec<String>,
        /// Backend to measure: soft, afalg, or all.
        #[arg(long, default_value = "all", value_parser = ["soft", "afalg", "all"])]
        backend: String,
        /// Bytes per request (one sector).
        #[arg(long, default_value_t = 4096)]
        size: usize,
        /// Seconds to spend on each figure.
        #[arg(long, default_value_t = 0.5)]
        seconds: f64,
    },
    /// Show which backends work here, the kernel drivers behind them, what
    /// `--backend auto` picks and why; runs the known-answer self-tests.
    Backends {
        /// Algorithm to report on (repeatable); default: all known algorithms.
        #[arg(long = "alg", value_name = "NAME")]
        algs: Vec<String>,
    },
}
