//! The filesystem core driven directly, without a mount, where the kernel's
//! own serialisation cannot hide a missing lock.

use crate::common;

use std::ffi::OsStr;

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
    let fs = CipherFs::new(&dir, &cfg.params, master, Backend::Soft, Backend::Soft).unwrap();
    (fs, dir)
}

#[test]
fn reads_never_see_a_sector_while_a_writer_rewrites_it() {
    let (fs, dir) = core_fs("torn");
    let len = 3 * 4096;
    let fh = fs
        .create(
            ROOT_ID,
            OsStr::new("f"),
            0o644,
            libc::O_RDWR,
            cipherfs::fs::Caller { uid: 0, gid: 0 },
        )
        .unwrap()
        .fh;
    fs.write(fh, 0, &vec![0xAA; len], false).unwrap();
    let runs = common::torn_sector_reads(
        2000,
        2000,
        || |fill| fs.write(fh, 0, &vec![fill; len], false).map(drop).unwrap(),
        || || fs.read(fh, 0, len as u32).unwrap(),
    );
    for (torn, reads) in runs {
        assert_eq!(
            torn, 0,
            "{torn} sectors read half-rewritten in {reads} reads"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
