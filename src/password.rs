//! Where a password comes from: a prompt on the terminal (no echo), a file,
//! or the output of a command. Never the command line, where `ps` shows it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

#[derive(Clone, Debug)]
pub enum Source {
    Prompt,
    File(PathBuf),
    Command(String),
}

fn strip_newline(mut v: Zeroizing<Vec<u8>>) -> Zeroizing<Vec<u8>> {
    if v.last() == Some(&b'\n') {
        v.pop();
        if v.last() == Some(&b'\r') {
            v.pop();
        }
    }
    v
}

/// A password every user can read protects nothing; say so rather than use it.
fn refuse_if_world_readable(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o004 != 0 {
        return Err(format!(
            "the password file {} is readable by every user (mode {:o}); \
             make it private first: chmod o-r {}",
            path.display(),
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

/// Reads a password; `confirm` asks twice on a terminal (init, passwd).
pub fn read(source: &Source, what: &str, confirm: bool) -> Result<Zeroizing<Vec<u8>>, String> {
    let pw = match source {
        Source::File(path) => {
            refuse_if_world_readable(path)?;
            let mut buf = Zeroizing::new(Vec::new());
            std::fs::File::open(path)
                .and_then(|mut f| f.read_to_end(&mut buf))
                .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
            strip_newline(buf)
        }
        Source::Command(cmd) => {
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(cmd)
                .stdin(Stdio::inherit())
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run the password command: {e}"))?;
            if !out.status.success() {
                return Err(format!("the password command failed ({})", out.status));
            }
            strip_newline(Zeroizing::new(out.stdout))
        }
        Source::Prompt => {
            let first = Zeroizing::new(
                rpassword::prompt_password(format!("{what}: "))
                    .map_err(|e| format!("cannot read a password from the terminal: {e} (use --passfile or --extpass)"))?
                    .into_bytes(),
            );
            if confirm {
                let again = Zeroizing::new(
                    rpassword::prompt_password("Repeat: ")
                        .map_err(|e| format!("cannot read a password from the terminal: {e}"))?
                        .into_bytes(),
                );
                if *again != *first {
                    return Err("the passwords do not match".into());
                }
            }
            first
        }
    };
    if pw.is_empty() {
        return Err("the password is empty".into());
    }
    Ok(pw)
}
