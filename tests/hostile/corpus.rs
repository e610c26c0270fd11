//! The hostile corpus: the positions cipherfs reads in a cipher directory,
//! the substitutes a writer of the storage can plant there, and what each
//! cell may and must do to the plaintext view.

use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    Config,
    RootDiriv,
    SubdirDiriv,
    Companion,
    Content,
    Symlink,
    DirEntry,
    /// The companion holding a symlink target over 3040 bytes.
    LongTarget,
}

pub const POSITIONS: [Position; 8] = [
    Position::Config,
    Position::RootDiriv,
    Position::SubdirDiriv,
    Position::Companion,
    Position::Content,
    Position::Symlink,
    Position::DirEntry,
    Position::LongTarget,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Substitute {
    LinkToSecret,
    LinkToDevZero,
    Fifo,
    Socket,
    CharDevice,
    Directory,
    Empty,
    Sparse1GiB,
    ByteTooLong,
    ByteTooShort,
}

pub const SUBSTITUTES: [Substitute; 10] = [
    Substitute::LinkToSecret,
    Substitute::LinkToDevZero,
    Substitute::Fifo,
    Substitute::Socket,
    Substitute::CharDevice,
    Substitute::Directory,
    Substitute::Empty,
    Substitute::Sparse1GiB,
    Substitute::ByteTooLong,
    Substitute::ByteTooShort,
];

/// The plaintext tree every cell starts from: (path, contents).
pub const LONG: &str = "a-name-long-enough-that-its-encrypted-form-exceeds-255-bytes-and-so-is-stored-as-a-long-name-with-a-companion-file-beside-it-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.txt";

pub fn files() -> Vec<(&'static str, Vec<u8>)> {
    let pat = |n: usize, seed: u8| (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
    vec![
        ("file.txt", pat(5000, 1)),
        ("other.txt", pat(3000, 2)),
        ("d/inner.txt", pat(1234, 3)),
        (LONG, pat(777, 4)),
    ]
}

/// The cipher-side paths of each position in the template.
pub struct Layout {
    config: PathBuf,
    root_diriv: PathBuf,
    subdir: PathBuf,
    companion: PathBuf,
    long_entry: String,
    content: PathBuf,
    symlink: PathBuf,
    dir_entry: PathBuf,
    long_target: PathBuf,
}

impl Layout {
    /// Finds each position in a cipher directory by its shape alone.
    pub fn find(c: &Path) -> Layout {
        let mut dirs = Vec::new();
        let (mut symlink, mut long, mut files) = (None, None, Vec::new());
        let mut long_target = None;
        for e in fs::read_dir(c).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ft = e.file_type().unwrap();
            if name.starts_with("cipherfs.longlink.") {
                long_target = Some(e.path());
                continue;
            }
            if name.starts_with("cipherfs.") && !name.starts_with("cipherfs.longname.") {
                continue;
            }
            if ft.is_dir() {
                dirs.push(e.path());
            } else if ft.is_symlink() {
                // The short one: the long one points to its companion.
                let to = fs::read_link(e.path()).unwrap();
                if !to.to_string_lossy().starts_with("cipherfs.longlink.") {
                    symlink = Some(e.path());
                }
            } else if name.starts_with("cipherfs.longname.") {
                if !name.ends_with(".name") {
                    long = Some(name);
                }
            } else {
                files.push((e.metadata().unwrap().len(), e.path()));
            }
        }
        files.sort();
        let (sub, empty): (Vec<_>, Vec<_>) = dirs
            .into_iter()
            .partition(|d| fs::read_dir(d).unwrap().count() > 1);
        let long = long.expect("a long name");
        Layout {
            config: c.join("cipherfs.conf"),
            root_diriv: c.join("cipherfs.diriv"),
            subdir: sub[0].clone(),
            companion: c.join(format!("{long}.name")),
            long_entry: long,
            content: files.last().unwrap().1.clone(),
            symlink: symlink.expect("a symlink"),
            dir_entry: empty[0].clone(),
            long_target: long_target.expect("a long symlink target"),
        }
    }

    /// Where the substitute goes. A subdirectory's IV is replaced in both
    /// subdirectories: the full one (its names) and the empty one (rmdir,
    /// which once read whatever stood there and wrote it back).
    pub fn targets(&self, p: Position) -> Vec<PathBuf> {
        match p {
            Position::Config => vec![self.config.clone()],
            Position::RootDiriv => vec![self.root_diriv.clone()],
            Position::SubdirDiriv => vec![
                self.subdir.join("cipherfs.diriv"),
                self.dir_entry.join("cipherfs.diriv"),
            ],
            Position::Companion => vec![self.companion.clone()],
            Position::Content => vec![self.content.clone()],
            Position::Symlink => vec![self.symlink.clone()],
            Position::DirEntry => vec![self.dir_entry.clone()],
            Position::LongTarget => vec![self.long_target.clone()],
        }
    }

    /// What the daemon's and fsck's messages must name for this position.
    pub fn named_as(&self, p: Position) -> Option<String> {
        let rel = |q: &Path| q.file_name().unwrap().to_string_lossy().into_owned();
        match p {
            Position::RootDiriv => Some("c/cipherfs.diriv".into()),
            Position::SubdirDiriv => Some(format!("{}/cipherfs.diriv", rel(&self.subdir))),
            Position::Companion => Some(self.long_entry.clone()),
            Position::LongTarget => Some(rel(&self.long_target)),
            _ => None,
        }
    }
}

/// Plaintext entries a damaged position may take down with it; everything
/// else must read exactly as written.
pub fn affected(p: Position) -> &'static [&'static str] {
    match p {
        Position::Config => &[],
        Position::RootDiriv => &["file.txt", "other.txt", "d/inner.txt", LONG],
        Position::SubdirDiriv => &["d/inner.txt"],
        Position::Companion => &[LONG],
        Position::Content => &["file.txt"],
        Position::Symlink | Position::DirEntry | Position::LongTarget => &[],
    }
}

/// A command on a plaintext entry that must fail with EIO in this cell,
/// where one is certain: the damaged IV takes the names under it, and an
/// entry that cannot be cipherfs's (a directory without an IV, a link whose
/// target is not encrypted, a header of zeros) is not shown as anything else.
pub fn must_fail_with_eio(
    pos: Position,
    sub: Substitute,
) -> Option<(&'static [&'static str], &'static str)> {
    use Substitute::*;
    match (pos, sub) {
        (Position::RootDiriv, _) => Some((&["cat"], "other.txt")),
        (Position::SubdirDiriv, _) => Some((&["cat"], "d/inner.txt")),
        (Position::Content, LinkToSecret | LinkToDevZero | Sparse1GiB) => {
            Some((&["cat"], "file.txt"))
        }
        (Position::Content, Directory) => Some((&["ls"], "file.txt")),
        (Position::Symlink, LinkToSecret | LinkToDevZero) => Some((&["readlink", "-v"], "link")),
        (Position::Symlink, Directory) => Some((&["ls"], "link")),
        (Position::DirEntry, Directory) => Some((&["ls"], "e")),
        (Position::DirEntry, LinkToSecret | LinkToDevZero) => Some((&["readlink", "-v"], "e")),
        (Position::LongTarget, _) => Some((&["readlink", "-v"], "longlink")),
        _ => None,
    }
}

/// Replaces `path` with `sub`, built from `original` (the bytes that were
/// there: a file's contents or a symlink's target).
pub fn plant(path: &Path, sub: Substitute, original: &[u8], secret: &Path) {
    use rustix::fs::{mknodat, FileType, Mode, CWD};
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        fs::remove_dir_all(path).unwrap();
    } else {
        fs::remove_file(path).unwrap();
    }
    let mode = Mode::from_raw_mode(0o666);
    match sub {
        Substitute::LinkToSecret => std::os::unix::fs::symlink(secret, path).unwrap(),
        Substitute::LinkToDevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        Substitute::Fifo => mknodat(CWD, path, FileType::Fifo, mode, 0).unwrap(),
        Substitute::Socket => {
            // Bound at a short path (sun_path holds 108 bytes), then moved.
            let short = secret.with_file_name("sock");
            drop(std::os::unix::net::UnixListener::bind(&short).unwrap());
            fs::rename(&short, path).unwrap();
        }
        Substitute::CharDevice => mknodat(
            CWD,
            path,
            FileType::CharacterDevice,
            mode,
            rustix::fs::makedev(1, 5),
        )
        .unwrap(),
        Substitute::Directory => fs::create_dir(path).unwrap(),
        Substitute::Empty => fs::write(path, b"").unwrap(),
        Substitute::Sparse1GiB => fs::File::create(path).unwrap().set_len(1 << 30).unwrap(),
        Substitute::ByteTooLong => {
            let mut v = original.to_vec();
            v.push(b'x');
            fs::write(path, v).unwrap()
        }
        Substitute::ByteTooShort => {
            fs::write(path, &original[..original.len().saturating_sub(1)]).unwrap()
        }
    }
}
