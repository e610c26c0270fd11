//! A full backing disk (a 2 MiB tmpfs under the cipher directory): writes
//! fail with ENOSPC, nothing already written is damaged, a failed write
//! changes no size, the daemon stays up, and freed space can be used again.

use crate::common;

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::mount::Mounted;

/// A small tmpfs, unmounted when dropped (after the FUSE mount above it).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Option<Self> {
        if !rustix::process::geteuid().is_root() {
            let why = "mounting a small tmpfs needs root";
            assert!(
                std::env::var("CIPHERFS_REQUIRE_FUSE").as_deref() != Ok("1"),
                "full_disk: CIPHERFS_REQUIRE_FUSE=1 but {why}"
            );
            eprintln!("SKIP full_disk: {why}");
            return None;
        }
        let _ = Command::new("umount").arg(&dir).output();
        fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mount -t tmpfs");
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // The daemon above may still be exiting, its descriptors keeping
        // the tmpfs busy for a moment: retry, or the mount is left behind.
        for _ in 0..100 {
            let done = Command::new("umount")
                .arg(&self.0)
                .output()
                .map(|o| o.status.success() || !String::from_utf8_lossy(&o.stderr).contains("busy"))
                .unwrap_or(true);
            if done {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = fs::remove_dir(&self.0);
    }
}

/// The byte at offset `i` of a file written with `seed`.
fn pattern(seed: u8, from: u64, len: usize) -> Vec<u8> {
    (from..from + len as u64)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed ^ (i >> 12) as u8)
        .collect()
}

fn is_enospc(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC)
}

/// Appends in chunks of shrinking size until not even one byte fits;
/// returns how many bytes the writes reported as written.
fn fill(f: &mut File, seed: u8) -> u64 {
    let mut total = 0u64;
    for chunk in [65536usize, 4096, 512, 16, 1] {
        loop {
            match f.write(&pattern(seed, total, chunk)) {
                Ok(0) => panic!("write returned 0"),
                Ok(n) => total += n as u64,
                Err(e) if is_enospc(&e) => break,
                Err(e) => panic!("filling the disk: expected ENOSPC, got {e}"),
            }
        }
    }
    total
}

fn check(path: &Path, want: &[u8], what: &str) {
    let got = fs::read(path).unwrap_or_else(|e| panic!("{what}: unreadable: {e}"));
    assert_eq!(got.len(), want.len(), "{what}: size");
    assert!(got == want, "{what}: content differs");
}

crate::in_both_content_modes!(a_full_backing_disk_fails_writes_cleanly_and_recovers);

fn a_full_backing_disk_fails_writes_cleanly_and_recovers(mode: crate::common::ContentMode) {
    let disk = std::env::temp_dir().join(format!(
        "cipherfs-disk-{}-{}",
        mode.name,
        std::process::id()
    ));
    let Some(_disk) = Tmpfs::mount(disk.clone(), "2m") else {
        return;
    };
    let Some(m) = Mounted::new_on(&mode.test("full_disk"), mode.init, Some(&disk.join("c"))) else {
        return;
    };
    let (keep, small, filler) = (
        m.plain.join("keep"),
        m.plain.join("small"),
        m.plain.join("filler"),
    );
    // keep ends in a partial sector (10,000 = 2 × 4096 + 1808); small is one.
    let mut keep_data = pattern(1, 0, 10_000);
    fs::write(&keep, &keep_data).unwrap();
    fs::write(&small, pattern(2, 0, 100)).unwrap();

    // fallocate(1) through the mount reserves backing space: writes into the
    // range still succeed once the disk is full.
    let reserved = m.plain.join("reserved");
    let r = File::create(&reserved).unwrap();
    rustix::fs::fallocate(&r, rustix::fs::FallocateFlags::empty(), 0, 200_000).unwrap();
    assert_eq!(r.metadata().unwrap().len(), 200_000);
    let kept = m.plain.join("kept");
    let kf = File::create(&kept).unwrap();
    rustix::fs::fallocate(&kf, rustix::fs::FallocateFlags::KEEP_SIZE, 0, 50_000).unwrap();
    assert_eq!(
        kf.metadata().unwrap().len(),
        0,
        "--keep-size keeps the size"
    );

    // The filler's appends after whole sectors reserve nothing: the one
    // that fails is undone by cutting the file back, which the checks of
    // its content below hold to.
    let mut f = File::create(&filler).unwrap();
    let filled = fill(&mut f, 3);
    assert!(
        filled > 1_000_000,
        "only {filled} bytes fit on a 2 MiB disk"
    );
    drop(f);

    // Growing small rewrites its last sector longer; that must fail up
    // front, not leave a sector that no longer decrypts.
    let mut a = OpenOptions::new().append(true).open(&small).unwrap();
    let e = a.write_all(&pattern(2, 100, 5000)).unwrap_err();
    assert!(is_enospc(&e), "append on a full disk: {e}");
    drop(a);
    let e = OpenOptions::new()
        .write(true)
        .open(&small)
        .unwrap()
        .set_len(6000)
        .unwrap_err();
    assert!(is_enospc(&e), "growing truncate on a full disk: {e}");
    // Rewriting sectors that exist needs no new space.
    let k = OpenOptions::new().write(true).open(&keep).unwrap();
    k.write_all_at(&pattern(9, 0, 100), 0).unwrap();
    k.write_all_at(&pattern(9, 9990, 10), 9990).unwrap();
    k.sync_all().unwrap();
    drop(k);
    keep_data[..100].copy_from_slice(&pattern(9, 0, 100));
    keep_data[9990..].copy_from_slice(&pattern(9, 9990, 10));
    r.write_all_at(&pattern(4, 0, 200_000), 0).unwrap();
    r.sync_all().unwrap();
    drop(r);
    kf.write_all_at(&pattern(5, 0, 50_000), 0).unwrap();
    drop(kf);
    let e = fs::write(m.plain.join("new"), b"x").unwrap_err();
    assert!(
        is_enospc(&e) || e.kind() == ErrorKind::StorageFull,
        "a new file: {e}"
    );

    assert!(m.is_mounted(), "the daemon survived the full disk");
    let check_all = |when: &str| {
        check(&keep, &keep_data, &format!("keep {when}"));
        check(&small, &pattern(2, 0, 100), &format!("small {when}"));
        check(
            &reserved,
            &pattern(4, 0, 200_000),
            &format!("reserved {when}"),
        );
        check(
            &filler,
            &pattern(3, 0, filled as usize),
            &format!("filler {when}"),
        );
    };
    check_all("on the full disk");
    m.remount();
    check_all("after a remount");

    // Freed space is usable again: as on any FUSE filesystem, once the
    // kernel's asynchronous RELEASE and FORGET of the deleted file have
    // reached the daemon, which then closes its last descriptors of it.
    fs::remove_file(&filler).unwrap();
    common::mount::wait_until("the deleted file's space to be freed", 10, || {
        let st = rustix::fs::statvfs(&m.plain).unwrap();
        st.f_bavail * st.f_frsize > 1_000_000
    });
    let mut a = OpenOptions::new().append(true).open(&small).unwrap();
    a.write_all(&pattern(2, 100, 5000)).unwrap();
    a.sync_all().unwrap();
    drop(a);
    fs::write(m.plain.join("new"), b"x").unwrap();
    m.remount();
    check(
        &small,
        &pattern(2, 0, 5100),
        "small grown after freeing space",
    );
    check(&keep, &keep_data, "keep at the end");
}

/// Blocks the backing file of the one regular file in `m`'s cipher root uses.
fn backing_blocks(m: &Mounted) -> u64 {
    let files = m.cipher_files();
    assert_eq!(files.len(), 1, "{files:?}");
    std::os::unix::fs::MetadataExt::blocks(&fs::metadata(&files[0]).unwrap())
}

crate::in_both_content_modes!(a_write_far_past_the_end_stays_sparse);

/// A write past the end leaves a hole, as on ext4: only the sectors written
/// (and an old partial last sector) take backing space, so a 1-byte write at
/// 100 GiB fits a 64 MiB disk, reads back with zeros before it, and the
/// backing file stays a few blocks.
fn a_write_far_past_the_end_stays_sparse(mode: crate::common::ContentMode) {
    let disk = std::env::temp_dir().join(format!(
        "cipherfs-sparse-{}-{}",
        mode.name,
        std::process::id()
    ));
    let Some(_disk) = Tmpfs::mount(disk.clone(), "64m") else {
        return;
    };
    let Some(m) = Mounted::new_on(&mode.test("sparse"), mode.init, Some(&disk.join("c"))) else {
        return;
    };
    const GIB: u64 = 1 << 30;
    let path = m.plain.join("sparse");
    // Starts with a partial sector, so the far write also extends that one.
    fs::write(&path, pattern(6, 0, 100)).unwrap();
    let f = OpenOptions::new()
        .write(true)
        .read(true)
        .open(&path)
        .unwrap();
    f.write_all_at(b"Z", 100 * GIB).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 100 * GIB + 1);
    // Into the middle of the hole it left.
    f.write_all_at(&pattern(7, 0, 10), 50 * GIB).unwrap();
    f.sync_all().unwrap();
    drop(f);
    // Each write took a sector or two (4 KiB each, 512-byte blocks), not the gap.
    let blocks = backing_blocks(&m);
    assert!(blocks <= 64, "the backing file uses {blocks} blocks");
    m.remount();
    let f = File::open(&path).unwrap();
    let at = |off: u64, len: usize| {
        let mut b = vec![1u8; len];
        f.read_exact_at(&mut b, off).unwrap();
        b
    };
    assert_eq!(at(0, 100), pattern(6, 0, 100));
    assert_eq!(
        at(100, 8000),
        vec![0u8; 8000],
        "the old last sector's zero tail"
    );
    assert_eq!(at(20 * GIB, 4096), vec![0u8; 4096], "the hole");
    assert_eq!(at(50 * GIB - 5, 5), vec![0u8; 5]);
    assert_eq!(at(50 * GIB, 10), pattern(7, 0, 10));
    assert_eq!(at(50 * GIB + 10, 5000), vec![0u8; 5000]);
    assert_eq!(at(100 * GIB - 4096, 4097)[..4096], vec![0u8; 4096][..]);
    assert_eq!(at(100 * GIB, 1), b"Z");
    // A new file written only far out: its header and one sector.
    let fresh = m.plain.join("fresh");
    let g = File::create(&fresh).unwrap();
    g.write_all_at(b"far", 30 * GIB).unwrap();
    drop(g);
    assert_eq!(fs::metadata(&fresh).unwrap().len(), 30 * GIB + 3);
    let st = rustix::fs::statvfs(&m.plain).unwrap();
    assert!(
        st.f_bavail * st.f_frsize > 60 << 20,
        "the writes used the disk"
    );
}
