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

/// The most a password file may hold; a longer one is refused, not read.
const PASSWORD_MAX: usize = 64 * 1024;

/// Reads a secret from `path` (a password or master key file): refused if
/// any of the mode bits in `forbidden` are set (readable by others protects
/// nothing), or if it holds more than `max` bytes. A pipe is fine
/// (`--passfile <(pass show vault)`); it is the user's file, not the
/// storage's. The buffer is sized once, so no partial copy is freed unwiped.
pub fn read_private_file(
    path: &std::path::Path,
    what: &str,
    max: usize,
    forbidden: u32,
) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::os::unix::fs::PermissionsExt;
    let f = std::fs::File::open(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let mode = meta.permissions().mode();
    if mode & forbidden != 0 {
        let who = if mode & forbidden & 0o070 != 0 {
            "its group or other users"
        } else {
            "every user"
        };
        return Err(format!(
            "the {what} {} is readable by {who} (mode {:o}); make it private first: chmod {} {}",
            path.display(),
            mode & 0o7777,
            if forbidden & 0o070 != 0 {
                "go-rwx"
            } else {
                "o-r"
            },
            path.display()
        ));
    }
    let mut buf = Zeroizing::new(vec![0u8; max + 1]);
    let mut len = 0;
    let mut f = f;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read the {what} {}: {e}", path.display())),
        }
    }
    if len > max {
        return Err(format!(
            "the {what} {} is longer than {max} bytes",
            path.display()
        ));
    }
    buf.truncate(len);
    Ok(buf)
}

/// The password in a file's text: its first line, as gocryptfs takes it.
/// More lines are ignored, with a warning (a file of two lines is more
/// likely a mistake than a password with a newline in it).
fn first_line(text: Zeroizing<Vec<u8>>) -> Zeroizing<Vec<u8>> {
    let text = strip_newline(text);
    match text.iter().position(|&b| b == b'\n') {
        Some(end) => {
            log::warn!("the password file has more than one line: only the first is used");
            strip_newline(Zeroizing::new(text[..=end].to_vec()))
        }
        None => text,
    }
}

/// A secret from standard input (a password for `--passfile -`, the master
/// key from the parent `mount` or a user's pipe), read straight from
/// descriptor 0 into one buffer of fixed size: no growing or library-buffered
/// copy of it is left in freed memory. At most `max` bytes; `what` names it.
pub fn read_stdin(max: usize, what: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut buf = Zeroizing::new(vec![0u8; max + 1]);
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(std::io::stdin(), &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(format!("cannot read the {what} from standard input: {e}")),
        }
    }
    if len > max {
        return Err(format!(
            "the {what} on standard input is longer than {max} bytes"
        ));
    }
    buf.truncate(len);
    Ok(buf)
}

/// Reads a password; `confirm` asks twice on a terminal (init, passwd).
pub fn read(source: &Source, what: &str, confirm: bool) -> Result<Zeroizing<Vec<u8>>, String> {
    let pw = match source {
        Source::File(path) if path.as_os_str() == "-" => {
            first_line(read_stdin(PASSWORD_MAX, "password")?)
        }
        Source::File(path) => first_line(read_private_file(
            path,
            "password file",
            PASSWORD_MAX,
            0o004,
        )?),
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
