//! The `cipherfs` command: parse, set up logging, dispatch to the
//! subcommand's module in `cmd/`, map failures to exit codes.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cipherfs::cmd::{self, mount::MountOptions};
use cipherfs::exitcode::{self, Failure};
use cli::{Cli, Command};

fn run(command: &Command, detached: bool) -> Result<(), Failure> {
    match command {
        Command::Init {
            cipherdir,
            format,
            password,
        } => {
            cmd::init::run(cipherdir, &format.init_options(password))?;
            eprintln!(
                "cipherfs: {} is ready. Mount it with: cipherfs mount {} MOUNTPOINT",
                cipherdir.display(),
                cipherdir.display()
            );
            Ok(())
        }
        Command::Recover {
            cipherdir,
            masterkey_file,
            format,
            password,
        } => cmd::recover::run(cipherdir, masterkey_file, &format.init_options(password)),
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
        } => {
            let mut opts = MountOptions {
                foreground: *foreground,
                backend: backend
                    .parse()
                    .map_err(|e: String| Failure::new(exitcode::USAGE, e))?,
                password: password.source(),
                masterkey_file: masterkey_file.clone(),
                read_only: *ro,
                allow_other: *allow_other,
                extra: Vec::new(),
                ready_stdout: detached,
                idle: *idle,
                pidfile: pidfile.clone(),
                debug_names: *debug_names,
                no_xattr: *no_xattr,
                acl: *acl,
                nonempty: false,
                default_permissions: false,
                shared_storage: None,
            };
            cmd::options::apply(&mut opts, options)?;
            cmd::mount::run(cipherdir, mountpoint, &opts)
        }
        Command::Info {
            cipherdir,
            show_masterkey,
            password,
        } => cmd::info::run(cipherdir, *show_masterkey, &password.source()),
        Command::Fsck {
            cipherdir,
            repair,
            password,
        } => cmd::fsck::run(cipherdir, *repair, &password.source()),
        Command::Passwd {
            cipherdir,
            password,
            new_passfile,
            masterkey_file,
        } => cmd::passwd::run(
            cipherdir,
            &password.source(),
            new_passfile.as_ref(),
            masterkey_file.as_ref(),
        ),
        Command::Completions { shell } => {
            cli::completions(*shell);
            Ok(())
        }
        Command::Speed {
            algs,
            backend,
            size,
            seconds,
        } => cmd::speed::run(algs, backend, *size, *seconds),
        Command::Backends { algs } => cmd::backends::run(algs),
    }
}

fn init_logging(cli: &Cli, detached: bool) {
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
    // The detached daemon has no terminal.
    if detached && mounting && cipherfs::logging::init_syslog(level).is_ok() {
        return;
    }
    cipherfs::logging::init_stderr(level);
}

fn main() -> ExitCode {
    // Read and removed at once, while this is the only thread, so that
    // nothing the daemon starts (an --extpass command) inherits it.
    let detached = std::env::var_os(cmd::mount::READY_ENV).is_some_and(|v| v == "1");
    std::env::remove_var(cmd::mount::READY_ENV);
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
    init_logging(&cli, detached);
    if let Err(e) = cipherfs::crypto::forbid_core_dumps() {
        log::warn!("{e}; a crash could leave key material in a core dump");
    }
    match run(&cli.command, detached) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("cipherfs: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
