//! Symbolic links. A stored target that fits a backing symlink (plaintext
//! targets up to 3040 bytes) is the link's own target; a longer one (up to
//! 4095 bytes, as Linux allows) is kept in a companion file at the cipher
//! directory's root, named after the hash of the stored form, and the
//! backing symlink points to that name. The companion goes with the link's
//! last name; hard links share it, as they share the link.

use std::io::Write;

use rustix::fs::{statat, AtFlags, FileType};

use super::error::{FsError, FsResult};
use super::node::{Node, ROOT_ID};
use super::CipherFs;
use crate::crashpoint;
use crate::names::{is_longlink, longlink_name, parse_long_target, LINK_MAX, LONGLINK_MAX};
use crate::untrusted;

impl CipherFs {
    fn root(&self) -> FsResult<std::sync::Arc<Node>> {
        self.nodes.get(ROOT_ID).ok_or(FsError::EIO)
    }

    /// Creates symlink `entry` in `parent` pointing to `target`, writing a
    /// long target's companion (durably) first.
    pub(super) fn make_symlink(&self, parent: &Node, entry: &str, target: &[u8]) -> FsResult<()> {
        let stored = self.names.encrypt_target(target)?;
        if self.names.is_plaintext() || stored.len() <= LINK_MAX {
            return Ok(rustix::fs::symlinkat(stored.as_str(), &parent.fd, entry)?);
        }
        let link = longlink_name(&stored);
        let root = self.root()?;
        let mut f = untrusted::create_regular(&root.fd, link.as_str(), 0o400)
            .map_err(|e| FsError(e.errno()))?;
        f.write_all(stored.as_bytes())?;
        f.sync_all()?;
        rustix::fs::fsync(rustix::fs::openat(
            &root.fd,
            ".",
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?)?;
        crashpoint::at("longlink-wrote-companion");
        if let Err(e) = rustix::fs::symlinkat(link.as_str(), &parent.fd, entry) {
            let _ = rustix::fs::unlinkat(&root.fd, link.as_str(), AtFlags::empty());
            return Err(e.into());
        }
        Ok(())
    }

    /// The decrypted target of a symlink node.
    pub(super) fn read_link(&self, node: &Node) -> FsResult<Vec<u8>> {
        let raw = rustix::fs::readlinkat(&node.fd, "", Vec::new())?;
        let raw = raw.as_bytes();
        let stored = if !self.names.is_plaintext() && is_longlink(raw) {
            let link = String::from_utf8_lossy(raw).into_owned();
            let root = self.root()?;
            untrusted::read_bounded(&root.fd, link.as_str(), LONGLINK_MAX)
                .map_err(|e| format!("its long-target companion {link} {e}"))
                .and_then(|full| parse_long_target(&full, &link))
                .map_err(|why| {
                    log::warn!("{}: {why}", self.describe(node));
                    FsError::EIO
                })?
                .into_bytes()
        } else {
            raw.to_vec()
        };
        self.names.decrypt_target(&stored).map_err(|e| {
            log::warn!(
                "{}: symlink target does not decrypt: {e}",
                self.describe(node)
            );
            FsError::EIO
        })
    }

    /// The long-target companion of symlink `entry` in `dir` if removing that
    /// name removes the link's last name: `None` for anything else, and when
    /// `source` (a rename's) is the same link.
    pub(super) fn last_long_link(
        &self,
        dir: &Node,
        entry: &str,
        source: Option<(&Node, &str)>,
    ) -> Option<String> {
        if self.names.is_plaintext() {
            return None;
        }
        let st = statat(&dir.fd, entry, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink || st.st_nlink != 1 {
            return None;
        }
        if let Some((sdir, sentry)) = source {
            let s = statat(&sdir.fd, sentry, AtFlags::SYMLINK_NOFOLLOW).ok()?;
            if (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino) {
                return None;
            }
        }
        let raw = rustix::fs::readlinkat(&dir.fd, entry, Vec::new()).ok()?;
        is_longlink(raw.as_bytes()).then(|| String::from_utf8_lossy(raw.as_bytes()).into_owned())
    }

    /// Removes a long-target companion whose link is gone.
    pub(super) fn drop_long_target(&self, link: Option<String>) {
        if let (Some(link), Ok(root)) = (link, self.root()) {
            let _ = rustix::fs::unlinkat(&root.fd, link.as_str(), AtFlags::empty());
        }
    }
}
