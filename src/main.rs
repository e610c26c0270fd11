//! The `cipherfs` command: parse, set up logging, run, map errors to exit codes.

mod cli;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cipherfs::cmd::{self, init::InitOptions, mount::MountOptions};
use cipherfs::config::Config;
use cipherfs::crypto::kdf::KdfParams;
use cipherfs::exitcode::{self, Failure};
use cipherfs::password;
use cipherfs::skcipher::{self, alg, selftest, Backend, BackendChoice, Skcipher};
use cipherfs::speed;
use cli::{Cli, Command, PasswordArgs};

const EXIT_USAGE: u8 = exitcode::USAGE;
const EXIT_CRYPTO: u8 = exitcode::SELFTEST;

fn source(p: &PasswordArgs) -> password::Source {
    match (&p.passfile, &p.extpass) {
        (Some(f), _) => password::Source::File(f.clone()),
        (None, Some(c)) => password::Source::Command(c.clone()),
        _ => password::Source::Prompt,
    }
}

/// Applies `-o a,b=c` options over the flags (mount(8) style).
fn apply_options(opts: &mut MountOptions, list: &[String]) -> Result<(), Failure> {
    for o in list
        .iter()
        .flat_map(|l| l.split(','))
        .filter(|o| !o.is_empty())
    {
        let (k, v) = o.split_once('=').map_or((o, None), |(k, v)| (k, Some(v)));
        match (k, v) {
            ("ro", None) => opts.read_only = true,
            ("rw", None) => opts.read_only = false,
            ("allow_other", None) => opts.allow_other = true,
            ("default_permissions", None) => opts.default_permissions = true,
            ("backend", Some(b)) => {
                opts.backend = b.parse().map_err(|e: String| Failure::new(EXIT_USAGE, e))?
            }
            ("passfile", Some(f)) => opts.password = password::Source::File(f.into()),
            ("extpass", Some(c)) => opts.password = password::Source::Command(c.into()),
            ("idle", Some(d)) => {
                opts.idle = Some(cli::parse_duration(d).map_err(|e| Failure::new(EXIT_USAGE, e))?)
            }
            ("pidfile", Some(f)) => opts.pidfile = Some(f.into()),
            ("masterkey_file", Some(f)) => opts.masterkey_file = Some(f.into()),
            ("debug_names", None) => opts.debug_names = true,
            ("noxattr", None) => opts.no_xattr = true,
            ("acl", None) => opts.acl = true,
            ("nonempty", None) => opts.nonempty = true,
            // The mount's source and type: kept for the mount call.
            ("subtype" | "fsname", Some(_)) => opts.extra.push(o.to_string()),
            (k, _) if cipherfs::helper::is_mount8_option(k) => {}
            ("kernel_cache", None) => {
                return Err(Failure::new(
                    EXIT_USAGE,
                    "mount option kernel_cache is not offered: the kernel would keep serving \
                     old contents after the cipher directory changes underneath (synced or \
                     shared storage); cipherfs revalidates instead",
                ))
            }
            (k, v) if is_passed_to_the_kernel(k, v) => opts.extra.push(o.to_string()),
            _ => {
                return Err(Failure::new(
                    EXIT_USAGE,
                    format!(
                        "unknown mount option {o:?}; cipherfs takes {} and the generic \
                         flags {} (see cipherfs(1) and mount.cipherfs(8))",
                        OWN_OPTIONS.join(", "),
                        GENERIC_FLAGS.join(", ")
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// The -o options cipherfs itself takes, as the refusal of others lists them.
const OWN_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "allow_other",
    "default_permissions",
    "backend=",
    "passfile=",
    "extpass=",
    "idle=",
    "pidfile=",
    "masterkey_file=",
    "debug_names",
    "noxattr",
    "acl",
    "nonempty",
    "max_read=",
    "fsname=",
    "subtype=",
];

/// Generic mount flags, which go to the mount call as flags.
const GENERIC_FLAGS: &[&str] = &[
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "async",
    "sync",
    "atime",
    "noatime",
    "dirsync",
    "relatime",
    "strictatime",
    "nodiratime",
    "diratime",
    "lazytime",
    "nolazytime",
];

/// Options the mount call itself understands: the generic flags, and
/// FUSE's max_read= (a number). Anything else it would refuse with a bare
/// EINVAL, so it is refused here by name instead.
fn is_passed_to_the_kernel(key: &str, value: Option<&str>) -> bool {
    match value {
        None => GENERIC_FLAGS.contains(&key),
        Some(v) => key == "max_read" && v.parse::<u32>().is_ok(),
    }
}

fn cmd_info(
    cipherdir: &std::path::Path,
    show_master: bool,
    pw: &PasswordArgs,
) -> Result<(), Failure> {
    let config = cmd::load_config(cipherdir)?;
    let p = &config.params;
    println!("format version   {}", p.format_version);
    println!(
        "content cipher   {} ({}-byte key)",
        p.content_cipher, p.content_key_bytes
    );
    println!("sector size      {}", p.sector_size);
    // The config's own spelling (cipherfs(5)).
    let names = match p.name_mode {
        cipherfs::config::NameMode::CtsCbc => "cts-cbc",
        cipherfs::config::NameMode::Plaintext => "plaintext",
    };
    println!("names            {names}");
    println!("features         {}", p.feature_flags.join(", "));
    println!(
        "kdf              {} m={} KiB t={} p={}",
        p.kdf, p.kdf_params.memory_kib, p.kdf_params.iterations, p.kdf_params.parallelism
    );
    if show_master {
        let master = cmd::unlock(&config, &source(pw))?;
        println!("master key       {}", &*cmd::master_hex(&master));
    }
    Ok(())
}

fn cmd_fsck(cipherdir: &std::path::Path, repair: bool, pw: &PasswordArgs) -> Result<(), Failure> {
    let config = cmd::load_config(cipherdir)?;
    let master = cmd::unlock(&config, &source(pw))?;
    let checker = cipherfs::fsck::Checker::new(cipherdir, &config, &master)
        .map_err(|e| Failure::new(cipherfs::exitcode::OTHER, e.to_string()))?;
    let report = checker.run();
    for p in &report.problems {
        println!("{p}");
    }
    let garbage = report.problems.iter().filter(|p| p.garbage).count();
    let mut left = report.problems.len();
    if repair && garbage > 0 {
        left -= garbage - cipherfs::fsck::repair(&report);
    }
    println!(
        "{}: {} checked, {}, {garbage} of them garbage{}",
        cipherdir.display(),
        count(report.entries as usize, "entry", "entries"),
        count(report.problems.len(), "problem", "problems"),
        if garbage > 0 && !repair {
            " (--repair removes those)"
        } else {
            ""
        }
    );
    if left == 0 {
        return Ok(());
    }
    Err(Failure::new(
        cipherfs::exitcode::DAMAGED,
        format!(
            "{} left in {}",
            count(left, "problem", "problems"),
            cipherdir.display()
        ),
    ))
}

/// "1 problem", "2 problems".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn init_options(f: &cli::FormatArgs, password: &PasswordArgs) -> InitOptions {
    InitOptions {
        cipher: f.cipher.clone(),
        sector_size: f.sector_size,
        plaintext_names: f.plaintext_names,
        kdf: KdfParams {
            memory_kib: f.kdf_memory_mib * 1024,
            iterations: f.kdf_iterations,
            parallelism: KdfParams::DEFAULT.parallelism,
        },
        password: source(password),
    }
}

fn cmd_passwd(
    cipherdir: &std::path::Path,
    pw: &PasswordArgs,
    new_passfile: &Option<std::path::PathBuf>,
    masterkey_file: &Option<std::path::PathBuf>,
) -> Result<(), Failure> {
    let config: Config = cmd::load_config(cipherdir)?;
    let master = match masterkey_file {
        // No old password: the key proves itself on the directory's names.
        Some(f) => {
            let master = cmd::recover::read_master_key(f)?;
            cmd::recover::check_key(cipherdir, &master, config.params.name_mode)?;
            master
        }
        None => cmd::unlock(&config, &source(pw))?,
    };
    let new_source = match new_passfile {
        Some(f) => password::Source::File(f.clone()),
        None => password::Source::Prompt,
    };
    let new_pw = password::read(&new_source, "New password", true)
        .map_err(|e| Failure::new(EXIT_USAGE, e))?;
    config.rewrap(&master, &new_pw)?.save(cipherdir)?;
    eprintln!("cipherfs: password changed");
    Ok(())
}

fn run(command: &Command) -> Result<bool, Failure> {
    match command {
        Command::Speed {
            algs,
            backend,
            size,
            seconds,
        } => {
            cmd_speed(algs, backend, *size, *seconds).map_err(|e| Failure::new(EXIT_USAGE, e))?;
            Ok(true)
        }
        Command::Backends { algs } => cmd_backends(algs).map_err(|e| Failure::new(EXIT_USAGE, e)),
        Command::Init {
            cipherdir,
            format,
            password,
        } => {
            let opts = init_options(format, password);
            cmd::init::run(cipherdir, &opts)?;
            eprintln!(
                "cipherfs: {} is ready. Mount it with: cipherfs mount {} MOUNTPOINT",
                cipherdir.display(),
                cipherdir.display()
            );
            Ok(true)
        }
        Command::Mount {
            cipherdir,
            mountpoint,
            foreground,
            backend,
            ro,
            allow_other,
            options,
            masterkey_file,
            password,
            idle,
            pidfile,
            debug_names,
            no_xattr,
            acl,
            ready_stdout,
        } => {
            let mut opts = MountOptions {
                foreground: *foreground,
                backend: backend
                    .parse()
                    .map_err(|e: String| Failure::new(EXIT_USAGE, e))?,
                password: source(password),
                masterkey_file: masterkey_file.clone(),
                read_only: *ro,
                allow_other: *allow_other,
                extra: Vec::new(),
                ready_stdout: *ready_stdout,
                idle: *idle,
                pidfile: pidfile.clone(),
                debug_names: *debug_names,
                no_xattr: *no_xattr,
                acl: *acl,
                nonempty: false,
                default_permissions: false,
            };
            apply_options(&mut opts, options)?;
            if opts.acl && opts.no_xattr {
                return Err(Failure::new(
                    EXIT_USAGE,
                    "acl and noxattr cannot go together: ACLs are stored as extended attributes",
                ));
            }
            cmd::mount::run(cipherdir, mountpoint, &opts)?;
            Ok(true)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "cipherfs", &mut std::io::stdout());
            Ok(true)
        }
        Command::Info {
            cipherdir,
            show_masterkey,
            password,
        } => cmd_info(cipherdir, *show_masterkey, password).map(|_| true),
        Command::Passwd {
            cipherdir,
            password,
            new_passfile,
            masterkey_file,
        } => cmd_passwd(cipherdir, password, new_passfile, masterkey_file).map(|_| true),
        Command::Recover {
            cipherdir,
            masterkey_file,
            format,
            password,
        } => {
            cmd::recover::run(cipherdir, masterkey_file, &init_options(format, password))?;
            Ok(true)
        }
        Command::Fsck {
            cipherdir,
            repair,
            password,
        } => cmd_fsck(cipherdir, *repair, password).map(|_| true),
    }
}

fn init_logging(cli: &Cli) {
    // A mount logs its two info lines (mounted, unmounted) by default.
    let mounting = matches!(cli.command, Command::Mount { .. });
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) if mounting => log::LevelFilter::Info,
        (false, 0) => log::LevelFilter::Warn,
        (false, 1) => log::LevelFilter::Info,
        (false, 2) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    // The detached daemon (started with --ready-stdout) has no terminal.
    let detached = matches!(
        cli.command,
        Command::Mount {
            ready_stdout: true,
            ..
        }
    );
    if detached && cipherfs::logging::init_syslog(level).is_ok() {
        return;
    }
    cipherfs::logging::init_stderr(level);
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
                        "  {:<6} ok, {} passed; {driver}",
                        backend.name(),
                        count(n, "known-answer vector", "known-answer vectors")
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
    let subcommands: Vec<String> = <Cli as clap::CommandFactory>::command()
        .get_subcommands()
        .flat_map(|c| {
            std::iter::once(c.get_name().to_string()).chain(c.get_all_aliases().map(str::to_string))
        })
        .chain(std::iter::once("help".to_string()))
        .collect();
    let args = match cipherfs::helper::classify(std::env::args_os().collect(), &subcommands) {
        cipherfs::helper::Invocation::Normal(a) | cipherfs::helper::Invocation::Helper(a) => a,
        cipherfs::helper::Invocation::Fake => return ExitCode::SUCCESS,
    };
    let cli = Cli::parse_from(args);
    init_logging(&cli);
    if let Err(e) = cipherfs::crypto::forbid_core_dumps() {
        log::warn!("{e}; a crash could leave key material in a core dump");
    }
    match run(&cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_CRYPTO),
        Err(f) => {
            eprintln!("cipherfs: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
