//! Another program changes the cipher directory under a live mount: the
//! daemon does not crash, and what the mount shows follows the backing files
//! once the kernel's one-second attribute and entry timeouts have passed.
//! (A cipher directory made read-only: tests/mount/basic.rs, EROFS.)

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::mount::Mounted;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

/// The backing file of each plaintext file, found by its size.
fn backing_by_size(m: &Mounted, plain_len: u64) -> PathBuf {
    m.cipher_files()
        .into_iter()
        .find(|p| fs::metadata(p).unwrap().len() == 32 + plain_len)
        .unwrap()
}

/// Past the kernel's attribute and entry timeouts (1 s).
fn past_ttl() {
    std::thread::sleep(Duration::from_millis(1300));
}

#[test]
fn changes_underneath_show_after_the_timeout_and_crash_nothing() {
    let Some(m) = Mounted::new("underneath", &[]) else {
        return;
    };
    let (a, b, c) = (m.plain.join("a"), m.plain.join("b"), m.plain.join("c"));
    fs::write(&a, pattern(1, 8192)).unwrap();
    fs::write(&b, pattern(2, 4096)).unwrap();
    fs::write(&c, pattern(3, 1024)).unwrap();
    assert!(fs::read(&a).unwrap() == pattern(1, 8192));
    let (ca, cb, cc) = (
        backing_by_size(&m, 8192),
        backing_by_size(&m, 4096),
        backing_by_size(&m, 1024),
    );

    // Rewritten in place (same inode), as a restore from backup does: the
    // daemon must notice the new header and key instead of its cached one.
    let ino = fs::metadata(&ca).unwrap().ino();
    fs::write(&ca, fs::read(&cb).unwrap()).unwrap();
    assert_eq!(fs::metadata(&ca).unwrap().ino(), ino);
    past_ttl();
    assert_eq!(
        fs::read(&a).unwrap(),
        pattern(2, 4096),
        "a after an in-place rewrite"
    );
    // And writes through the mount then use the new key.
    fs::write(&a, pattern(4, 5000)).unwrap();
    assert!(
        fs::read(&a).unwrap() == pattern(4, 5000),
        "a rewritten through the mount"
    );

    // Replaced by rename (a new inode).
    fs::rename(&cc, &cb).unwrap();
    past_ttl();
    assert_eq!(
        fs::read(&b).unwrap(),
        pattern(3, 1024),
        "b after a rename over it"
    );
    assert!(fs::metadata(&c).is_err(), "c is gone underneath");

    // Deleted underneath while open through the mount: the open handle keeps
    // reading what it had, as on any filesystem; the name goes away.
    let f = fs::File::open(&a).unwrap();
    fs::remove_file(&ca).unwrap();
    past_ttl();
    let mut buf = vec![0u8; 5000];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, 0).unwrap();
    assert!(buf == pattern(4, 5000), "the open handle after the delete");
    drop(f);
    assert_eq!(
        fs::metadata(&a).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    // Truncated underneath to a size no cipherfs file has: EIO, logged.
    fs::OpenOptions::new()
        .write(true)
        .open(&cb)
        .unwrap()
        .set_len(40)
        .unwrap();
    past_ttl();
    assert_eq!(fs::read(&b).unwrap_err().raw_os_error(), Some(libc::EIO));
    assert!(m.is_mounted(), "the daemon survived");
    assert!(
        fs::read_dir(&m.plain).unwrap().all(|e| e.is_ok()),
        "the listing still works"
    );
}
