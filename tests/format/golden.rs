//! Formats are forever: every golden cipher directory under
//! tests/fixtures/ still mounts and reads exactly as it was written, and
//! fsck finds it clean. The fixtures are never edited (tests/fixtures/README.md).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::mount::{cipherfs, write_private, Mounted};

fn nested() -> Vec<u8> {
    (0..10000u32)
        .map(|i| ((i * 31) ^ (i >> 12)) as u8)
        .collect()
}

#[test]
fn format_1_made_on_2026_11_30_still_mounts_and_reads() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    // An empty cipher directory to have a mount's temp layout, then the
    // fixture's copy in its place (the fixture itself is never written).
    let Some(mut m) = Mounted::new("golden-v1", &[]) else {
        return;
    };
    m.unmount();
    fs::remove_dir_all(&m.cipher).unwrap();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&fixture)
        .arg(&m.cipher)
        .status()
        .unwrap();
    assert!(cp.success());
    let pw = m.root.join("fixture-pw");
    write_private(&pw, "fixture password\n");
    m.passfile = pw;
    let fsck = cipherfs(&[
        "fsck",
        "--passfile",
        m.passfile.to_str().unwrap(),
        m.cipher.to_str().unwrap(),
    ]);
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
    m.mount();
    let p = |s: &str| m.plain.join(s);
    let mut names: Vec<String> = fs::read_dir(&m.plain)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let long = "L".repeat(200);
    let mut want = vec![
        "dir",
        "empty",
        "hello.txt",
        "link",
        "longlink",
        "sparse",
        long.as_str(),
    ];
    want.sort();
    assert_eq!(names, want);
    assert_eq!(fs::read(p("hello.txt")).unwrap(), b"Hello, cipherfs v1\n");
    assert_eq!(fs::read(p("dir/nested.bin")).unwrap(), nested());
    assert_eq!(fs::read(p(&long)).unwrap(), b"long name\n");
    assert_eq!(fs::read(p("empty")).unwrap(), b"");
    let mut sparse = vec![0u8; 100_001];
    sparse[100_000] = b'!';
    assert_eq!(fs::read(p("sparse")).unwrap(), sparse);
    assert_eq!(
        fs::read_link(p("link")).unwrap(),
        Path::new("dir/nested.bin")
    );
    assert_eq!(fs::read(p("link")).unwrap(), nested());
    assert_eq!(
        fs::read_link(p("longlink")).unwrap(),
        Path::new(&"t/".repeat(2000))
    );
    assert_eq!(fs::symlink_metadata(p("longlink")).unwrap().len(), 4000);
}
