//! `cipherfs fsck`: walks a cipher directory without mounting it and reports
//! every entry the daemon would refuse (EIO) or hide, by its cipher path.
//! Nothing is changed unless asked, and then only what is provably garbage:
//! leftovers of an interrupted mkdir or passwd, and long-name companions
//! whose entry is gone. Contents are not authenticated (XTS, CBC), so a
//! damaged sector cannot be told from a good one; headers and sizes can.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::{Config, NameMode, CONFIG_NAME, CONFIG_TMP_NAME};
use crate::content::offsets::plain_size;
use crate::content::{FileHeader, HEADER_LEN};
use crate::crypto::MasterKey;
use crate::names::{
    read_long_name, NameCipher, NameError, DIRIV_LEN, DIRIV_NAME, LONGNAME_PREFIX, LONGNAME_SUFFIX,
    MKDIR_TMP_PREFIX,
};
use crate::skcipher::Backend;

#[derive(Debug)]
pub struct Problem {
    /// Where in the cipher directory.
    pub path: PathBuf,
    /// Where it would show in the mount, when its directory's names decrypt.
    pub plain: Option<PathBuf>,
    pub what: String,
    /// Provably garbage: `--repair` may remove it.
    pub garbage: bool,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)?;
        if let Some(p) = &self.plain {
            write!(f, " [plaintext {}]", p.display())?;
        }
        if self.garbage {
            write!(f, " (garbage: --repair removes it)")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub entries: u64,
    pub problems: Vec<Problem>,
}

pub struct Checker {
    root: PathBuf,
    names: NameCipher,
    plaintext_names: bool,
}

impl Checker {
    pub fn new(root: &Path, config: &Config, master: &MasterKey) -> Result<Self, NameError> {
        let plaintext_names = config.params.name_mode == NameMode::Plaintext;
        let names = if plaintext_names {
            NameCipher::plaintext()
        } else {
            NameCipher::new(master, Backend::Soft)?
        };
        Ok(Self {
            root: root.to_path_buf(),
            names,
            plaintext_names,
        })
    }

    /// Every entry below the root, for the progress bar's length.
    fn count(&self) -> u64 {
        let mut n = 0;
        let mut stack = vec![self.root.clone()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                n += 1;
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
        n
    }

    /// Checks the whole tree; draws a progress bar when stderr is a terminal.
    pub fn run(&self) -> Report {
        let bar = ProgressBar::with_draw_target(Some(self.count()), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} entries {msg}") {
            bar.set_style(style);
        }
        let mut report = Report::default();
        let mut stack = vec![(self.root.clone(), Some(PathBuf::from("/")))];
        while let Some((dir, plain)) = stack.pop() {
            self.check_dir(&dir, plain.as_deref(), &mut report, &mut stack, &bar);
        }
        bar.finish_and_clear();
        report
    }

    fn check_dir(
        &self,
        dir: &Path,
        plain: Option<&Path>,
        report: &mut Report,
        stack: &mut Vec<(PathBuf, Option<PathBuf>)>,
        bar: &ProgressBar,
    ) {
        let mut found = Vec::new();
        let mut problem = |path: PathBuf, plain: Option<PathBuf>, what: String, garbage| {
            found.push(Problem {
                path,
                plain,
                what,
                garbage,
            })
        };
        let entries: Vec<OsString> = match fs::read_dir(dir) {
            Ok(rd) => rd.flatten().map(|e| e.file_name()).collect(),
            Err(e) => {
                problem(
                    dir.to_path_buf(),
                    None,
                    format!("unreadable directory: {e}"),
                    false,
                );
                report.problems.append(&mut found);
                return;
            }
        };
        let iv = self.diriv(dir).map_err(|what| {
            let what = format!("{what}; no name in this directory can be decrypted");
            problem(
                dir.join(DIRIV_NAME),
                plain.map(Path::to_path_buf),
                what,
                false,
            )
        });
        let at_root = dir == self.root;
        for raw in &entries {
            bar.inc(1);
            report.entries += 1;
            let path = dir.join(raw);
            let Some(entry) = raw.to_str() else {
                problem(path, None, "not a cipherfs name (not UTF-8)".into(), false);
                continue;
            };
            if entry == DIRIV_NAME || (at_root && entry == CONFIG_NAME) {
                continue;
            }
            if let Some(what) = self.internal(dir, entry, at_root, &entries) {
                let garbage = what.1;
                if !what.0.is_empty() {
                    problem(path, None, what.0, garbage);
                }
                continue;
            }
            let Ok(iv) = iv else { continue };
            let name = match self.encoded(dir, entry).and_then(|enc| {
                self.names
                    .decrypt(&enc, &iv)
                    .map_err(|e| format!("name does not decrypt: {e}"))
            }) {
                Ok(n) => n,
                Err(what) => {
                    problem(path, None, what, false);
                    continue;
                }
            };
            let plain_path = plain.map(|p| p.join(std::ffi::OsStr::from_bytes(&name)));
            match fs::symlink_metadata(&path) {
                Err(e) => problem(path, plain_path, format!("cannot stat: {e}"), false),
                Ok(m) if m.is_dir() => stack.push((path, plain_path)),
                Ok(m) if m.is_file() => {
                    if let Err(what) = check_file(&path, m.len()) {
                        problem(path, plain_path, what, false);
                    }
                }
                Ok(m) if m.file_type().is_symlink() => {
                    if let Err(what) = self.check_symlink(&path) {
                        problem(path, plain_path, what, false);
                    }
                }
                Ok(_) => {}
            }
        }
        report.problems.append(&mut found);
    }

    fn diriv(&self, dir: &Path) -> Result<[u8; DIRIV_LEN], String> {
        if self.plaintext_names {
            return Ok([0; DIRIV_LEN]);
        }
        let b =
            fs::read(dir.join(DIRIV_NAME)).map_err(|e| format!("missing or unreadable ({e})"))?;
        b.try_into()
            .map_err(|b: Vec<u8>| format!("is {} bytes, not {DIRIV_LEN}", b.len()))
    }

    /// For cipherfs's own names: what to report (empty: nothing) and whether
    /// it is garbage; `None` for an ordinary entry.
    fn internal(
        &self,
        dir: &Path,
        entry: &str,
        at_root: bool,
        entries: &[OsString],
    ) -> Option<(String, bool)> {
        if let Some(short) = entry
            .strip_prefix(LONGNAME_PREFIX)
            .and_then(|s| s.strip_suffix(LONGNAME_SUFFIX))
        {
            let owner = format!("{LONGNAME_PREFIX}{short}");
            return Some(
                if entries.iter().any(|e| e.as_bytes() == owner.as_bytes()) {
                    (String::new(), false)
                } else {
                    ("long-name companion whose entry is gone".into(), true)
                },
            );
        }
        if entry.starts_with(MKDIR_TMP_PREFIX) {
            // Garbage only if it holds nothing a user could have put there.
            let only_iv = fs::read_dir(dir.join(entry))
                .map(|rd| rd.flatten().all(|e| e.file_name() == DIRIV_NAME))
                .unwrap_or(false);
            return Some(if only_iv {
                ("temporary directory of an interrupted mkdir".into(), true)
            } else {
                (
                    "temporary directory of an interrupted mkdir, not empty".into(),
                    false,
                )
            });
        }
        if at_root && entry == CONFIG_TMP_NAME {
            return Some(("temporary config of an interrupted passwd".into(), true));
        }
        if entry.starts_with(".cipherfs.") || entry == CONFIG_NAME {
            return Some((
                "a cipherfs-internal name out of place (hidden from the mount)".into(),
                false,
            ));
        }
        None
    }

    /// The encoded name behind an entry: itself, or its long-name companion.
    fn encoded(&self, dir: &Path, entry: &str) -> Result<String, String> {
        if self.plaintext_names || !entry.starts_with(LONGNAME_PREFIX) {
            return Ok(entry.to_string());
        }
        let companion =
            fs::File::open(dir.join(format!("{entry}{LONGNAME_SUFFIX}"))).map_err(|e| {
                format!("long name without its {LONGNAME_SUFFIX} companion ({e}); its name is lost")
            })?;
        read_long_name(companion, entry)
    }

    fn check_symlink(&self, path: &Path) -> Result<(), String> {
        let target = fs::read_link(path).map_err(|e| format!("unreadable symlink: {e}"))?;
        if !self.plaintext_names {
            self.names
                .decrypt_target(target.as_os_str().as_bytes())
                .map_err(|e| format!("symlink target does not decrypt: {e}"))?;
        }
        Ok(())
    }
}

/// A regular file's size and header; contents are not authenticated.
fn check_file(path: &Path, len: u64) -> Result<(), String> {
    plain_size(len).map_err(|e| e.to_string())?;
    if len < HEADER_LEN as u64 {
        return Ok(());
    }
    let mut hb = [0u8; HEADER_LEN];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut hb))
        .map_err(|e| format!("cannot read the file header: {e}"))?;
    FileHeader::parse(&hb).map_err(|e| e.to_string())?;
    Ok(())
}

/// Removes the garbage in `report`, saying what it removes; returns how many
/// it could not remove.
pub fn repair(report: &Report) -> usize {
    let mut failed = 0;
    for p in report.problems.iter().filter(|p| p.garbage) {
        let r = if p.path.is_dir() {
            fs::remove_dir_all(&p.path)
        } else {
            fs::remove_file(&p.path)
        };
        match r {
            Ok(()) => println!("removed {}", p.path.display()),
            Err(e) => {
                println!("could not remove {}: {e}", p.path.display());
                failed += 1;
            }
        }
    }
    failed
}
