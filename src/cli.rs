//! Command-line definitions (clap). Behaviour lives in the modules they call.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cipherfs",
    version,
    about = "Encrypted overlay filesystem with in-process or in-kernel (AF_ALG) crypto",
    long_about = "cipherfs encrypts files sector by sector (xts(aes), essiv(cbc(aes),sha256), \
or gcm(aes), which authenticates each sector) through cipher layers modelled on the Linux \
kernel's skcipher and AEAD APIs, with two backends: \
soft (in-process AES-NI/VAES) and afalg (the running kernel's crypto through AF_ALG sockets).\n\n\
Get started: `cipherfs init DIR`, then `cipherfs mount DIR MOUNTPOINT`.\n\n\
See cipherfs(1)."
)]
pub struct Cli {
    /// More log output (repeat for more); RUST_LOG overrides. Never plaintext names: other libraries' lines are withheld unless --debug-names.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors in the log.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Where the password comes from (default: a prompt on the terminal).
#[derive(Args, Debug, Clone)]
pub struct PasswordArgs {
    /// Read the password from FILE (its first line), or from standard input for -.
    #[arg(long, value_name = "FILE", conflicts_with = "extpass")]
    pub passfile: Option<PathBuf>,
    /// Run CMD with /bin/sh and use what it prints as the password.
    #[arg(long, value_name = "CMD")]
    pub extpass: Option<String>,
}

/// The format of a cipher directory, as init chooses it (and recover restates it).
#[derive(Args, Debug, Clone)]
pub struct FormatArgs {
    /// The on-disk format (cipherfs(5)): 2 encrypts names with HCTR2 under a key per directory; 1 is the earlier format, for recovering or testing a directory made with it.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=2))]
    pub format_version: u32,
    /// Content cipher: xts-aes-256 (AES-256-XTS), xts-aes-128, essiv-aes-256 (AES-256-CBC-ESSIV), or gcm-aes-256 (AES-256-GCM per sector: tampering gives EIO; format 2; 28 bytes more per sector).
    #[arg(long, default_value = "xts-aes-256", value_parser = ["xts-aes-256", "xts-aes-128", "essiv-aes-256", "gcm-aes-256"], hide_possible_values = true)]
    pub cipher: String,
    /// Sector size in bytes.
    #[arg(long, default_value_t = 4096, value_parser = clap::builder::PossibleValuesParser::new(["512", "1024", "2048", "4096"]).map(|s| s.parse::<u32>().unwrap_or(4096)))]
    pub sector_size: u32,
    /// Store names unencrypted (for debugging only).
    #[arg(long)]
    pub plaintext_names: bool,
    /// Argon2id memory in MiB (values below 64 are for tests).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=i64::from(cipherfs::crypto::kdf::KdfParams::MAX_MEMORY_KIB / 1024)))]
    pub kdf_memory_mib: u32,
    /// Argon2id passes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=i64::from(cipherfs::crypto::kdf::KdfParams::MAX_ITERATIONS)))]
    pub kdf_iterations: u32,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new cipher directory (an empty directory, made if missing).
    Init {
        /// The directory that will hold the encrypted files.
        cipherdir: PathBuf,
        #[command(flatten)]
        format: FormatArgs,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Write a new config for a cipher directory whose config is lost, from its master key and a new password.
    Recover {
        /// The cipher directory (without its cipherfs.conf).
        cipherdir: PathBuf,
        /// The master key (hex, as `info --show-masterkey` printed it), from FILE, or stdin for -. FILE must not be readable by its group or others.
        #[arg(long, value_name = "FILE")]
        masterkey_file: PathBuf,
        /// The format the directory was made with (init's flags; its defaults if not given).
        #[command(flatten)]
        format: FormatArgs,
        /// The new password.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Mount CIPHERDIR on MOUNTPOINT, showing its plaintext.
    Mount {
        /// The cipher directory (made by `cipherfs init`).
        cipherdir: PathBuf,
        /// An existing directory where the plaintext will appear.
        mountpoint: PathBuf,
        /// Stay in the foreground (by default the daemon detaches once the mount answers).
        #[arg(short, long)]
        foreground: bool,
        /// Cipher backend: soft, afalg, or auto (see BACKEND SELECTION in cipherfs(1)).
        #[arg(long, default_value = "auto", value_parser = ["soft", "afalg", "auto"])]
        backend: String,
        /// Mount read-only.
        #[arg(long)]
        ro: bool,
        /// Let other users see the mount (needs user_allow_other in /etc/fuse.conf for non-root).
        #[arg(long)]
        allow_other: bool,
        /// Mount options, comma-separated: ro, rw, allow_other, default_permissions, backend=, passfile=, extpass=, idle=, pidfile=, masterkey_file=, debug_names, noxattr, acl, nonempty, sharedstorage, nosharedstorage, max_read=, fsname=, subtype=, and generic flags (nodev, nosuid, noatime, ...); others are refused by name.
        #[arg(short = 'o', value_name = "OPTIONS")]
        options: Vec<String>,
        /// Mount with the raw master key (hex, as `info --show-masterkey` prints it) from FILE, or stdin for -. FILE must not be readable by its group or others.
        #[arg(long, value_name = "FILE")]
        masterkey_file: Option<PathBuf>,
        #[command(flatten)]
        password: PasswordArgs,
        /// Unmount after DURATION without use (e.g. 90s, 10m, 1h, 1h30m; plain numbers are seconds; at least 1s). A mount still in use (an open file, a working directory inside) stays, and is tried again later.
        #[arg(long, value_name = "DURATION", value_parser = cipherfs::cmd::options::parse_duration)]
        idle: Option<std::time::Duration>,
        /// Also name files by their plaintext names in the log, and let the FUSE library's own lines (which quote names) through (for debugging; off by default).
        #[arg(long)]
        debug_names: bool,
        /// No extended attributes at all (ENOTSUP); by default user.* is offered, encrypted. Saves a request per file in untar.
        #[arg(long)]
        no_xattr: bool,
        /// POSIX ACLs (setfacl, getfacl), stored encrypted and enforced by the kernel; off by default (see ACLS in cipherfs(1)).
        #[arg(long, conflicts_with = "no_xattr")]
        acl: bool,
        /// Write the daemon's PID to FILE while mounted (removed on exit).
        #[arg(long, value_name = "FILE")]
        pidfile: Option<PathBuf>,
    },
    /// Print a cipher directory's settings (never the key, unless asked).
    Info {
        /// The cipher directory.
        cipherdir: PathBuf,
        /// Also print the master key, after asking for the password. Keep it offline.
        #[arg(long)]
        show_masterkey: bool,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Check a cipher directory (unmounted, or mounted but idle) and report every damaged or undecryptable entry by its cipher path; changes nothing unless --repair.
    Fsck {
        /// The cipher directory.
        cipherdir: PathBuf,
        /// Remove what is provably garbage (leftovers of an interrupted mkdir or passwd, long-name companions whose entry is gone), after listing it. Nothing else is ever changed.
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Change the password (the master key stays; the config gets a fresh salt).
    Passwd {
        /// The cipher directory.
        cipherdir: PathBuf,
        #[command(flatten)]
        password: PasswordArgs,
        /// Read the new password from FILE.
        #[arg(long, value_name = "FILE")]
        new_passfile: Option<PathBuf>,
        /// Prove the right to change it with the master key (hex, from FILE, or stdin for -) instead of the old password.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["passfile", "extpass"])]
        masterkey_file: Option<PathBuf>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Measure cipher throughput on every backend that works here.
    Speed {
        /// Algorithm to measure, as NAME or NAME:KEYBYTES (repeatable); default:
        /// xts(aes):64, xts(aes):32, essiv(cbc(aes),sha256):32, cbc(aes):32, gcm(aes):32.
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

impl PasswordArgs {
    /// Where the password comes from: --passfile, --extpass, or a prompt.
    pub fn source(&self) -> cipherfs::password::Source {
        match (&self.passfile, &self.extpass) {
            (Some(f), _) => cipherfs::password::Source::File(f.clone()),
            (None, Some(c)) => cipherfs::password::Source::Command(c.clone()),
            _ => cipherfs::password::Source::Prompt,
        }
    }
}

impl FormatArgs {
    /// What `init` (and `recover`) are to make, with the password's source.
    pub fn init_options(&self, password: &PasswordArgs) -> cipherfs::cmd::init::InitOptions {
        use cipherfs::crypto::kdf::KdfParams;
        cipherfs::cmd::init::InitOptions {
            format_version: self.format_version,
            cipher: self.cipher.clone(),
            sector_size: self.sector_size,
            plaintext_names: self.plaintext_names,
            kdf: KdfParams {
                memory_kib: self.kdf_memory_mib * 1024,
                iterations: self.kdf_iterations,
                parallelism: KdfParams::DEFAULT.parallelism,
            },
            password: password.source(),
        }
    }
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "cipherfs", &mut std::io::stdout());
}
