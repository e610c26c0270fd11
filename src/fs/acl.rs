//! POSIX ACLs, with `--acl`. The kernel enforces them (FUSE_POSIX_ACL turns
//! on its own permission checks) from `system.posix_acl_access` and
//! `system.posix_acl_default`, which it reads and writes through the xattr
//! calls; what it leaves to the filesystem, the daemon does as ext4 does in
//! the kernel: a new entry inherits its directory's default ACL (and the
//! umask is then not applied), chmod rewrites the ACL's mask, and setting an
//! access ACL sets the mode's permission bits (an ACL that says no more than
//! the mode is not stored at all). The ACLs are stored encrypted like user
//! xattrs, under names of their own (`user.cfsacl.access`, `.default`).

use std::ffi::OsStr;

use super::error::{FsError, FsResult};
use super::node::{Kind, Node};
use super::CipherFs;

pub const ACCESS: &str = "system.posix_acl_access";
pub const DEFAULT: &str = "system.posix_acl_default";
const STORED_ACCESS: &str = "user.cfsacl.access";
const STORED_DEFAULT: &str = "user.cfsacl.default";

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;

/// Which of a node's two ACLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Access,
    Default,
}

impl Which {
    /// The ACL an xattr name means, if it names one.
    pub fn of(name: &OsStr) -> Option<Which> {
        match name.to_str()? {
            ACCESS => Some(Which::Access),
            DEFAULT => Some(Which::Default),
            _ => None,
        }
    }

    fn stored(self) -> &'static str {
        match self {
            Which::Access => STORED_ACCESS,
            Which::Default => STORED_DEFAULT,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    tag: u16,
    perm: u16,
    id: u32,
}

/// An ACL in the kernel's xattr form: a version, then (tag, perm, id)
/// entries, little-endian.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl(Vec<Entry>);

impl Acl {
    pub fn parse(b: &[u8]) -> Option<Acl> {
        if b.len() < 4 || !(b.len() - 4).is_multiple_of(8) {
            return None;
        }
        if u32::from_le_bytes(b[..4].try_into().ok()?) != VERSION {
            return None;
        }
        let entries: Vec<Entry> = b[4..]
            .chunks_exact(8)
            .map(|c| Entry {
                tag: u16::from_le_bytes([c[0], c[1]]),
                perm: u16::from_le_bytes([c[2], c[3]]),
                id: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        let count = |t: u16| entries.iter().filter(|e| e.tag == t).count();
        let named = count(USER) + count(GROUP);
        let well_formed = count(USER_OBJ) == 1
            && count(GROUP_OBJ) == 1
            && count(OTHER) == 1
            && (if named > 0 {
                count(MASK) == 1
            } else {
                count(MASK) <= 1
            })
            && entries.iter().all(|e| {
                e.perm & !7 == 0 && [USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER].contains(&e.tag)
            });
        well_formed.then_some(Acl(entries))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = VERSION.to_le_bytes().to_vec();
        for e in &self.0 {
            out.extend_from_slice(&e.tag.to_le_bytes());
            out.extend_from_slice(&e.perm.to_le_bytes());
            out.extend_from_slice(&e.id.to_le_bytes());
        }
        out
    }

    fn perm_of(&self, tag: u16) -> Option<u32> {
        self.0
            .iter()
            .find(|e| e.tag == tag)
            .map(|e| u32::from(e.perm))
    }

    /// The permission bits the ACL gives the mode: owner, mask (or owning
    /// group without one), others.
    fn mode_bits(&self) -> u32 {
        let group = self.perm_of(MASK).or(self.perm_of(GROUP_OBJ)).unwrap_or(0);
        (self.perm_of(USER_OBJ).unwrap_or(0) << 6) | (group << 3) | self.perm_of(OTHER).unwrap_or(0)
    }

    /// Whether the mode alone says all the ACL says (no named entries).
    fn is_minimal(&self) -> bool {
        self.0
            .iter()
            .all(|e| matches!(e.tag, USER_OBJ | GROUP_OBJ | OTHER))
    }

    /// A directory's default ACL made a new entry's access ACL for `mode`
    /// (the kernel's posix_acl_create_masq): the ACL and mode each keep only
    /// what both allow. Returns the ACL, unless the mode now says it all.
    fn create_masq(&self, mode: &mut u32) -> Option<Acl> {
        let mut acl = self.clone();
        let mut m = *mode;
        for e in acl.0.iter_mut() {
            match e.tag {
                USER_OBJ => {
                    e.perm &= ((m >> 6) & 7) as u16;
                    m &= (u32::from(e.perm) << 6) | !0o700;
                }
                OTHER => {
                    e.perm &= (m & 7) as u16;
                    m &= u32::from(e.perm) | !0o007;
                }
                _ => {}
            }
        }
        let group_tag = if acl.perm_of(MASK).is_some() {
            MASK
        } else {
            GROUP_OBJ
        };
        if let Some(e) = acl.0.iter_mut().find(|e| e.tag == group_tag) {
            e.perm &= ((m >> 3) & 7) as u16;
            m &= (u32::from(e.perm) << 3) | !0o070;
        }
        *mode = m;
        (!acl.is_minimal()).then_some(acl)
    }

    /// After chmod: the owner, mask (or owning group) and other entries take
    /// the new mode's bits (the kernel's posix_acl_chmod).
    fn chmod_masq(&mut self, mode: u32) {
        let has_mask = self.perm_of(MASK).is_some();
        for e in self.0.iter_mut() {
            match e.tag {
                USER_OBJ => e.perm = ((mode >> 6) & 7) as u16,
                MASK => e.perm = ((mode >> 3) & 7) as u16,
                GROUP_OBJ if !has_mask => e.perm = ((mode >> 3) & 7) as u16,
                OTHER => e.perm = (mode & 7) as u16,
                _ => {}
            }
        }
    }
}

/// What a new entry takes from its directory's default ACL.
pub struct Inherited {
    access: Option<Acl>,
    /// A new directory's own default ACL: the same as its parent's.
    default: Option<Acl>,
}

impl CipherFs {
    fn acl_path(node: &Node) -> String {
        use std::os::fd::AsRawFd;
        format!("/proc/self/fd/{}", node.fd.as_raw_fd())
    }

    /// An ACL stored on a node, if any.
    fn acl_read(&self, node: &Node, which: Which) -> FsResult<Option<Acl>> {
        if !matches!(node.kind, Kind::File | Kind::Dir) {
            return Ok(None);
        }
        let p = Self::acl_path(node);
        let size = match rustix::fs::getxattr_query(p.as_str(), which.stored()) {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut raw = vec![0u8; size];
        let n = rustix::fs::getxattr(p.as_str(), which.stored(), &mut raw[..])?;
        raw.truncate(n);
        let acl = self
            .xattrs
            .decrypt_value(&raw)
            .ok()
            .and_then(|plain| Acl::parse(&plain));
        match acl {
            Some(acl) => Ok(Some(acl)),
            None => {
                log::warn!("{}: a stored ACL does not decrypt", self.describe(node));
                Err(FsError::EIO)
            }
        }
    }

    fn acl_write(&self, node: &Node, which: Which, acl: Option<&Acl>) -> FsResult<()> {
        let p = Self::acl_path(node);
        match acl {
            Some(acl) => {
                let enc = self
                    .xattrs
                    .encrypt_value(&acl.to_bytes())
                    .map_err(|_| FsError(libc::E2BIG))?;
                rustix::fs::setxattr(
                    p.as_str(),
                    which.stored(),
                    &enc,
                    rustix::fs::XattrFlags::empty(),
                )?;
            }
            None => match rustix::fs::removexattr(p.as_str(), which.stored()) {
                Ok(()) | Err(rustix::io::Errno::NODATA) => {}
                Err(e) => return Err(e.into()),
            },
        }
        Ok(())
    }

    fn chmod_bits(&self, node: &Node, bits: u32) -> FsResult<()> {
        let mode = node.stat()?.st_mode;
        let new = (mode & 0o7000) | (bits & 0o777);
        if new != mode & 0o7777 {
            rustix::fs::chmodat(
                rustix::fs::CWD,
                Self::acl_path(node),
                rustix::fs::Mode::from_raw_mode(new),
                rustix::fs::AtFlags::empty(),
            )?;
        }
        Ok(())
    }

    /// getxattr of an ACL: its xattr form, or ENODATA.
    pub(super) fn acl_get(&self, node: &Node, which: Which) -> FsResult<Vec<u8>> {
        match self.acl_read(node, which)? {
            Some(acl) => Ok(acl.to_bytes()),
            None => Err(FsError(libc::ENODATA)),
        }
    }

    /// setxattr of an ACL. An access ACL sets the mode's permission bits,
    /// and is stored only if it says more than the mode can.
    pub(super) fn acl_set(&self, node: &Node, which: Which, value: &[u8]) -> FsResult<()> {
        if !matches!(node.kind, Kind::File | Kind::Dir) {
            return Err(FsError::EOPNOTSUPP);
        }
        let acl = Acl::parse(value).ok_or(FsError::EINVAL)?;
        match which {
            Which::Access => {
                self.chmod_bits(node, acl.mode_bits())?;
                self.acl_write(node, which, (!acl.is_minimal()).then_some(&acl))
            }
            Which::Default if node.kind != Kind::Dir => Err(FsError(libc::EACCES)),
            Which::Default => self.acl_write(node, which, Some(&acl)),
        }
    }

    pub(super) fn acl_remove(&self, node: &Node, which: Which) -> FsResult<()> {
        if self.acl_read(node, which)?.is_none() {
            return Err(FsError(libc::ENODATA));
        }
        self.acl_write(node, which, None)
    }

    /// After chmod of `node`: its access ACL's mask follows the new mode.
    pub(super) fn acl_after_chmod(&self, node: &Node, mode: u32) -> FsResult<()> {
        if let Some(mut acl) = self.acl_read(node, Which::Access)? {
            acl.chmod_masq(mode);
            self.acl_write(node, Which::Access, Some(&acl))?;
        }
        Ok(())
    }

    /// The mode of a new entry in `parent`, and what it inherits: with a
    /// default ACL there, that ACL shapes the mode and the umask is not
    /// applied (as on ext4); without one, the umask is.
    fn acl_for_new(
        &self,
        parent: &Node,
        mode: u32,
        umask: u32,
        is_dir: bool,
    ) -> FsResult<(u32, Option<Inherited>)> {
        let Some(default) = self.acl_read(parent, Which::Default)? else {
            return Ok((mode & !umask, None));
        };
        let mut m = mode;
        let access = default.create_masq(&mut m);
        let default = is_dir.then_some(default);
        Ok((m, Some(Inherited { access, default })))
    }

    /// The mode for a new entry in directory `parent` created with `mode`
    /// under `umask`, and what it inherits (see `inherit`). Without
    /// `--acl`, simply the mode less the umask.
    pub fn creation_mode(
        &self,
        parent: u64,
        mode: u32,
        umask: u32,
        is_dir: bool,
    ) -> FsResult<(u32, Option<Inherited>)> {
        if !self.acl {
            return Ok((mode & !umask, None));
        }
        self.acl_for_new(&*self.node(parent)?, mode, umask, is_dir)
    }

    /// Gives the new node `id` what `creation_mode` said it inherits.
    pub fn inherit(&self, id: u64, inherited: Option<Inherited>) -> FsResult<()> {
        match inherited {
            Some(i) => self.acl_apply(&*self.node(id)?, i),
            None => Ok(()),
        }
    }

    /// Stores what a new node inherited (regular files and directories;
    /// Linux keeps no user xattrs, so no ACL, on other kinds).
    fn acl_apply(&self, node: &Node, inherited: Inherited) -> FsResult<()> {
        if !matches!(node.kind, Kind::File | Kind::Dir) {
            return Ok(());
        }
        if let Some(acl) = &inherited.access {
            self.acl_write(node, Which::Access, Some(acl))?;
        }
        if let Some(acl) = &inherited.default {
            self.acl_write(node, Which::Default, Some(acl))?;
        }
        Ok(())
    }

    /// The ACL names a node lists.
    pub(super) fn acl_names(&self, node: &Node) -> FsResult<Vec<u8>> {
        let mut out = Vec::new();
        for (which, name) in [(Which::Access, ACCESS), (Which::Default, DEFAULT)] {
            if self.acl_read(node, which)?.is_some() {
                out.extend_from_slice(name.as_bytes());
                out.push(0);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Acl {
        Acl(entries
            .iter()
            .map(|&(tag, perm, id)| Entry { tag, perm, id })
            .collect())
    }

    #[test]
    fn round_trip_and_validation() {
        let a = acl(&[
            (USER_OBJ, 6, 0),
            (USER, 4, 1000),
            (GROUP_OBJ, 4, 0),
            (MASK, 4, 0),
            (OTHER, 0, 0),
        ]);
        assert_eq!(Acl::parse(&a.to_bytes()), Some(a.clone()));
        assert_eq!(a.mode_bits(), 0o640);
        // A named entry without a mask, or a bad tag, is refused.
        assert!(Acl::parse(
            &acl(&[
                (USER_OBJ, 6, 0),
                (USER, 4, 1),
                (GROUP_OBJ, 4, 0),
                (OTHER, 0, 0)
            ])
            .to_bytes()
        )
        .is_none());
        assert!(Acl::parse(
            &acl(&[
                (USER_OBJ, 6, 0),
                (0x40, 4, 1),
                (GROUP_OBJ, 4, 0),
                (OTHER, 0, 0)
            ])
            .to_bytes()
        )
        .is_none());
        assert!(Acl::parse(b"\x02\x00\x00\x00\x01").is_none());
    }

    #[test]
    fn inheritance_and_chmod_follow_the_kernel() {
        // default: u::rwx, u:1000:rwx, g::r-x, m::rwx, o::---; create 0666.
        let d = acl(&[
            (USER_OBJ, 7, 0),
            (USER, 7, 1000),
            (GROUP_OBJ, 5, 0),
            (MASK, 7, 0),
            (OTHER, 0, 0),
        ]);
        let mut mode = 0o666;
        let a = d.create_masq(&mut mode).unwrap();
        assert_eq!(mode, 0o660);
        assert_eq!(a.perm_of(USER_OBJ), Some(6));
        assert_eq!(a.perm_of(MASK), Some(6));
        assert_eq!(a.perm_of(OTHER), Some(0));
        // A minimal default ACL leaves only a mode.
        let min = acl(&[(USER_OBJ, 7, 0), (GROUP_OBJ, 5, 0), (OTHER, 5, 0)]);
        let mut mode = 0o777;
        assert!(min.create_masq(&mut mode).is_none());
        assert_eq!(mode, 0o755);
        let mut a = a;
        a.chmod_masq(0o600);
        assert_eq!(a.perm_of(MASK), Some(0));
        assert_eq!(
            a.perm_of(GROUP_OBJ),
            Some(5),
            "the owning group entry stays"
        );
    }
}
