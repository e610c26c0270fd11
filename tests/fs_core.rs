//! The filesystem core driven directly, without a mount, where the kernel's
//! own serialisation cannot hide a missing lock.

use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use cipherfs::config::{Config, NewConfig};
use cipherfs::crypto::kdf::KdfParams;
use cipherfs::crypto::MasterKey;
use cipherfs::fs::{write_diriv, CipherFs, ROOT_ID};
use cipherfs::skcipher::Backend;

fn core_fs(name: &str) -> (CipherFs, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("cipherfs-core-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let master = MasterKey::generate().unwrap();
    let cfg = Config::create(
        &NewConfig {
            kdf_params: KdfParams::FLOOR,
            ..NewConfig::default()
        },
        b"pw",
        &master,
    )
    .unwrap();
    cfg.save(&dir).unwrap();
    write_diriv(&std::fs::File::open(&dir).unwrap()).unwrap();
    let fs = CipherFs::new(&dir, &cfg.params, master, Backend::Soft).unwrap();
    (fs, dir)
}

#[test]
fn reads_never_see_a_sector_while_a_writer_rewrites_it() {
    let (fs, dir) = core_fs("torn");
    let fs = Arc::new(fs);
    let len = 3 * 4096;
    let (_, _, fh) = fs
        .create(
            ROOT_ID,
            OsStr::new("f"),
            0o644,
            libc::O_RDWR,
            cipherfs::fs::Caller { uid: 0, gid: 0 },
        )
        .unwrap();
    fs.write(fh, 0, &vec![0xAA; len], false).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // The writer keeps going until the readers have overlapped it for a
    // while: on a loaded machine 400 writes can end before a reader thread
    // is even scheduled, and a race that never ran proves nothing.
    let reads_by = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let start = Arc::new(Barrier::new(3));
    let writer = {
        let (fs, done, reads_by, start) = (
            Arc::clone(&fs),
            Arc::clone(&done),
            Arc::clone(&reads_by),
            Arc::clone(&start),
        );
        std::thread::spawn(move || {
            start.wait();
            let mut i = 0;
            while i < 400 || reads_by.iter().any(|r| r.load(Ordering::SeqCst) < 100) {
                fs.write(
                    fh,
                    0,
                    &vec![if i % 2 == 0 { 0x55 } else { 0xAA }; len],
                    false,
                )
                .unwrap();
                i += 1;
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|n| {
            let (fs, done, reads_by, start) = (
                Arc::clone(&fs),
                Arc::clone(&done),
                Arc::clone(&reads_by),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                start.wait();
                let (mut torn, mut reads) = (0, 0);
                while !done.load(Ordering::SeqCst) {
                    let data = fs.read(fh, 0, len as u32).unwrap();
                    reads += 1;
                    reads_by[n].fetch_add(1, Ordering::SeqCst);
                    torn += data
                        .chunks(4096)
                        .filter(|s| !(s.iter().all(|&b| b == 0x55) || s.iter().all(|&b| b == 0xAA)))
                        .count();
                }
                (torn, reads)
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        let (torn, reads) = r.join().unwrap();
        assert!(reads > 0);
        assert_eq!(
            torn, 0,
            "{torn} sectors read half-rewritten in {reads} reads"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
