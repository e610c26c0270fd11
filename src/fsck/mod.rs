//! `cipherfs fsck`: walks a cipher directory without mounting it and reports
//! every entry the daemon would refuse (EIO) or hide, by its cipher path.
//! Nothing is changed unless asked, and then only what is provably garbage:
//! leftovers of an interrupted mkdir or passwd, long-name companions whose
//! entry is gone, and long symlink targets no link names.
//!
//! In the skcipher sector modes (XTS, CBC) contents are not authenticated,
//! so a damaged sector cannot be told from a good one; headers and sizes
//! can. In the AEAD mode (`gcm(aes)`) every sector's tag is verified
//! (`content.rs`), and the progress bar counts bytes.

mod content;

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustix::fs::{openat, statat, AtFlags, Dir, FileType, Mode, OFlags};

use crate::config::{Config, NameMode, CONFIG_NAME, CONFIG_TMP_NAME};
use crate::content::{mode_of, Layout, SectorMode};
use crate::crypto::MasterKey;
use crate::names::{
    is_longlink, parse_long_name, parse_long_target, NameCipher, NameError, DIRIV_LEN, DIRIV_NAME,
    LONGLINK_MAX, LONGNAME_MAX, LONGNAME_PREFIX, LONGNAME_SUFFIX, LONGNAME_TMP_PREFIX,
    MKDIR_TMP_PREFIX,
};
use crate::skcipher::Backend;
use crate::untrusted;

/// A directory below the root, opened without following a link: the walk
/// never leaves the cipher directory, whatever was put in it.
fn subdir(parent: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// A directory's entries (but `.` and `..`) with their types, unfollowed.
fn list_dir(dir: &OwnedFd) -> rustix::io::Result<Vec<(OsString, FileType)>> {
    let mut out = Vec::new();
    for e in Dir::read_from(dir)? {
        let e = e?;
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        out.push((name.to_os_string(), e.file_type()));
    }
    Ok(out)
}

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
    /// The cipher directory checked.
    pub root: PathBuf,
    pub entries: u64,
    pub problems: Vec<Problem>,
}

pub struct Checker<'a> {
    root: PathBuf,
    names: NameCipher,
    plaintext_names: bool,
    files: content::Files<'a>,
}

impl<'a> Checker<'a> {
    pub fn new(root: &Path, config: &Config, master: &'a MasterKey) -> Result<Self, NameError> {
        let p = &config.params;
        let plaintext_names = p.name_mode == NameMode::Plaintext;
        let names = NameCipher::new(master, p.name_mode, Backend::Soft)?;
        Ok(Self {
            root: root.to_path_buf(),
            names,
            plaintext_names,
            files: content::Files {
                master,
                layout: Layout::new(mode_of(&p.content_cipher), u64::from(p.sector_size)),
                alg: p.content_cipher.clone(),
                key_len: p.content_key_bytes,
                version: p.format_version as u16,
            },
        })
    }

    /// Whether every sector's tag is checked (the bar then counts bytes).
    fn authenticated(&self) -> bool {
        self.files.layout.mode == SectorMode::Aead
    }

    /// Every entry below the root, or with authenticated contents every
    /// byte of its regular files, for the progress bar's length.
    fn count(&self, root: &OwnedFd) -> u64 {
        let mut n = 0;
        let mut stack = vec![subdir(root, OsStr::new("."))];
        while let Some(Ok(d)) = stack.pop() {
            for (name, ft) in list_dir(&d).unwrap_or_default() {
                n += match ft {
                    FileType::RegularFile if self.authenticated() => {
                        statat(&d, &name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_or(0, |st| st.st_size as u64)
                    }
                    _ if self.authenticated() => 0,
                    _ => 1,
                };
                if ft == FileType::Directory {
                    stack.push(subdir(&d, &name));
                }
            }
        }
        n
    }

    /// Checks the whole tree; draws a progress bar when stderr is a terminal.
    pub fn run(&self) -> Report {
        let mut report = Report {
            root: self.root.clone(),
            ..Report::default()
        };
        let root = match untrusted::open_dir(&self.root)
            .and_then(|d| subdir(&d, OsStr::new(".")).map_err(untrusted::UntrustedError::Os))
        {
            Ok(fd) => fd,
            Err(e) => {
                report.problems.push(Problem {
                    path: self.root.clone(),
                    plain: None,
                    what: format!("unreadable directory: {e}"),
                    garbage: false,
                });
                return report;
            }
        };
        let bar =
            ProgressBar::with_draw_target(Some(self.count(&root)), ProgressDrawTarget::stderr());
        let template = if self.authenticated() {
            "{bar:40} {bytes}/{total_bytes} verified {msg}"
        } else {
            "{bar:40} {pos}/{len} entries {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        let mut stack = vec![(root, self.root.clone(), Some(PathBuf::from("/")))];
        while let Some((fd, dir, plain)) = stack.pop() {
            self.check_dir(&fd, &dir, plain.as_deref(), &mut report, &mut stack, &bar);
        }
        bar.finish_and_clear();
        self.orphan_long_targets(&mut report);
        report
    }

    fn check_dir(
        &self,
        fd: &OwnedFd,
        dir: &Path,
        plain: Option<&Path>,
        report: &mut Report,
        stack: &mut Vec<(OwnedFd, PathBuf, Option<PathBuf>)>,
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
        let listed = match list_dir(fd) {
            Ok(l) => l,
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
        let names: Vec<OsString> = listed.iter().map(|(n, _)| n.clone()).collect();
        let iv = self.diriv(fd).map_err(|what| {
            let what = format!("{what}; no name in this directory can be decrypted");
            problem(
                dir.join(DIRIV_NAME),
                plain.map(Path::to_path_buf),
                what,
                false,
            )
        });
        let at_root = dir == self.root;
        for (raw, _) in &listed {
            if !self.authenticated() {
                bar.inc(1);
            }
            report.entries += 1;
            let path = dir.join(raw);
            let Some(entry) = raw.to_str() else {
                problem(path, None, "not a cipherfs name (not UTF-8)".into(), false);
                continue;
            };
            if entry == DIRIV_NAME || (at_root && entry == CONFIG_NAME) {
                continue;
            }
            if let Some(what) = self.internal(fd, entry, at_root, &names) {
                let garbage = what.1;
                if !what.0.is_empty() {
                    problem(path, None, what.0, garbage);
                }
                continue;
            }
            let Ok(iv) = iv else { continue };
            let name = match self.encoded(fd, entry).and_then(|enc| {
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
            let plain_path = plain.map(|p| p.join(OsStr::from_bytes(&name)));
            let st = match statat(fd, entry, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(e) => {
                    problem(path, plain_path, format!("cannot stat: {e}"), false);
                    continue;
                }
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => match subdir(fd, raw) {
                    Ok(sub) => stack.push((sub, path, plain_path)),
                    Err(e) => problem(path, plain_path, format!("cannot open: {e}"), false),
                },
                FileType::RegularFile => {
                    let progress = |n: u64| {
                        if self.authenticated() {
                            bar.inc(n)
                        }
                    };
                    if let Err(what) = self.files.check(fd, entry, st.st_size as u64, progress) {
                        problem(path, plain_path, what, false);
                    }
                }
                FileType::Symlink => {
                    if let Err(what) = self.check_symlink(fd, entry) {
                        problem(path, plain_path, what, false);
                    }
                }
                _ => {}
            }
        }
        report.problems.append(&mut found);
    }

    fn diriv(&self, dir: &OwnedFd) -> Result<[u8; DIRIV_LEN], String> {
        if self.plaintext_names {
            return Ok([0; DIRIV_LEN]);
        }
        untrusted::read_exact::<DIRIV_LEN>(dir, DIRIV_NAME).map_err(|e| match e.errno() {
            libc::ENOENT => "missing".to_string(),
            _ => e.to_string(),
        })
    }

    /// For cipherfs's own names: what to report (empty: nothing) and whether
    /// it is garbage; `None` for an ordinary entry.
    fn internal(
        &self,
        dir: &OwnedFd,
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
            let only_iv = subdir(dir, OsStr::new(entry))
                .and_then(|d| list_dir(&d))
                .map(|l| {
                    l.iter()
                        .all(|(n, ft)| n == DIRIV_NAME && *ft == FileType::RegularFile)
                })
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
        if entry.starts_with(LONGNAME_TMP_PREFIX) {
            return Some((
                "temporary long-name companion of an interrupted create".into(),
                true,
            ));
        }
        if at_root && is_longlink(entry.as_bytes()) {
            // Judged once the whole tree is walked (orphan_long_targets).
            return Some((String::new(), false));
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
    fn encoded(&self, dir: &OwnedFd, entry: &str) -> Result<String, String> {
        if self.plaintext_names || !entry.starts_with(LONGNAME_PREFIX) {
            return Ok(entry.to_string());
        }
        let companion = format!("{entry}{LONGNAME_SUFFIX}");
        let full = untrusted::read_bounded(dir, companion.as_str(), LONGNAME_MAX).map_err(|e| {
            if e.errno() == libc::ENOENT {
                format!("long name without its {LONGNAME_SUFFIX} companion; its name is lost")
            } else {
                format!("its {LONGNAME_SUFFIX} companion {e}; its name is lost")
            }
        })?;
        parse_long_name(&full, entry)
    }

    fn check_symlink(&self, dir: &OwnedFd, entry: &str) -> Result<(), String> {
        let target = rustix::fs::readlinkat(dir, entry, Vec::new())
            .map_err(|e| format!("unreadable symlink: {e}"))?;
        if self.plaintext_names {
            return Ok(());
        }
        let mut stored = target.as_bytes().to_vec();
        if is_longlink(&stored) {
            let link = String::from_utf8_lossy(&stored).into_owned();
            stored = untrusted::open_dir(&self.root)
                .and_then(|root| untrusted::read_bounded(&root, link.as_str(), LONGLINK_MAX))
                .map_err(|e| match e.errno() {
                    libc::ENOENT => {
                        format!("its long target {link} is missing; the target is lost")
                    }
                    _ => format!("its long target {link} {e}"),
                })
                .and_then(|full| parse_long_target(&full, &link))?
                .into_bytes();
        }
        self.names
            .decrypt_target(&stored)
            .map_err(|e| format!("symlink target does not decrypt: {e}"))?;
        Ok(())
    }

    /// Long-target companions at the root that no symlink anywhere names:
    /// garbage, left by a crash between writing one and making its link.
    /// Every symlink counts, whether or not its name decrypts, so nothing a
    /// damaged directory still refers to is ever called garbage.
    fn orphan_long_targets(&self, report: &mut Report) {
        let Ok(root) = untrusted::open_dir(&self.root)
            .and_then(|d| subdir(&d, OsStr::new(".")).map_err(untrusted::UntrustedError::Os))
        else {
            return;
        };
        let companions: Vec<OsString> = list_dir(&root)
            .unwrap_or_default()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| is_longlink(n.as_bytes()))
            .collect();
        if companions.is_empty() {
            return;
        }
        let mut named = std::collections::HashSet::new();
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for (name, ft) in list_dir(&d).unwrap_or_default() {
                match ft {
                    FileType::Directory => stack.extend(subdir(&d, &name)),
                    FileType::Symlink => {
                        if let Ok(t) = rustix::fs::readlinkat(&d, &name, Vec::new()) {
                            named.insert(t.into_bytes());
                        }
                    }
                    _ => {}
                }
            }
        }
        for c in companions {
            if !named.contains(c.as_bytes()) {
                report.problems.push(Problem {
                    path: self.root.join(&c),
                    plain: None,
                    what: "long symlink target whose link is gone".into(),
                    garbage: true,
                });
            }
        }
    }
}

/// The directory holding `path` (a path below `root`), reached from `root`
/// one component at a time without following a link, and the last name.
fn parent_of(root: &Path, path: &Path) -> Option<(OwnedFd, OsString)> {
    let rel = path.strip_prefix(root).ok()?;
    let name = rel.file_name()?.to_os_string();
    let mut fd = subdir(&untrusted::open_dir(root).ok()?, OsStr::new(".")).ok()?;
    for part in rel.parent()?.components() {
        fd = subdir(&fd, part.as_os_str()).ok()?;
    }
    Some((fd, name))
}

/// Removes one piece of garbage: a file, or a directory holding nothing
/// but its IV, never following a link.
fn remove(root: &Path, path: &Path) -> std::io::Result<()> {
    let (dir, name) = parent_of(root, path)
        .ok_or_else(|| std::io::Error::other("its directory cannot be opened"))?;
    let st = statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = subdir(&dir, &name)?;
        let _ = rustix::fs::unlinkat(&sub, DIRIV_NAME, AtFlags::empty());
        rustix::fs::unlinkat(&dir, &name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(&dir, &name, AtFlags::empty())?;
    }
    Ok(())
}

/// Removes the garbage in `report`, saying what it removes; returns how many
/// it could not remove.
pub fn repair(report: &Report) -> usize {
    let mut failed = 0;
    for p in report.problems.iter().filter(|p| p.garbage) {
        match remove(&report.root, &p.path) {
            Ok(()) => println!("removed {}", p.path.display()),
            Err(e) => {
                println!("could not remove {}: {e}", p.path.display());
                failed += 1;
            }
        }
    }
    failed
}
