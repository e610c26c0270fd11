//! Formats are forever: every golden cipher directory under
//! tests/fixtures/ still mounts and reads exactly as it was written, and
//! fsck finds it clean. The fixtures are never edited (tests/fixtures/README.md).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::mount::{write_private, Mounted};

fn nested() -> Vec<u8> {
    (0..10000u32)
        .map(|i| ((i * 31) ^ (i >> 12)) as u8)
        .collect()
}

/// A mount's temporary layout with a copy of the cipher directory `src` in
/// place of its own (the fixture itself is never written), and the fixture
/// password; unmounted. `None` where FUSE is not available.
fn copy_of(label: &str, src: &Path) -> Option<Mounted> {
    let mut m = Mounted::new(label, &[])?;
    m.unmount();
    fs::remove_dir_all(&m.cipher).unwrap();
    // `cp -r` keeps no xattrs and no hard links, as a fresh clone has none,
    // so what a manifest test restores is really restored by the test.
    let cp = Command::new("cp")
        .arg("-r")
        .arg(src)
        .arg(&m.cipher)
        .status()
        .unwrap();
    assert!(cp.success());
    let pw = m.root.join("fixture-pw");
    write_private(&pw, "fixture password\n");
    m.passfile = pw;
    Some(m)
}

/// fsck finds the copy clean.
fn assert_fsck_clean(m: &Mounted, what: &str) {
    let fsck = m.fsck(&[]);
    assert!(
        fsck.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

#[test]
fn format_1_made_on_2026_11_30_still_mounts_and_reads() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1");
    let Some(m) = copy_of("golden-v1", &fixture) else {
        return;
    };
    assert_fsck_clean(&m, "v1");
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

/// The plaintext tree under `root` as scripts/make-golden writes a
/// manifest: every path with its kind, size, SHA-256 or link target, user
/// xattrs (hex) and, for files, link count; sorted by path.
fn manifest_of(root: &Path) -> Vec<serde_json::Value> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
    fn walk(root: &Path, dir: &Path, out: &mut Vec<serde_json::Value>) {
        for e in fs::read_dir(dir).unwrap() {
            let full = e.unwrap().path();
            let rel = full
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let meta = fs::symlink_metadata(&full).unwrap();
            let mut v = serde_json::json!({ "path": rel });
            if meta.file_type().is_symlink() {
                v["kind"] = "symlink".into();
                v["target"] = fs::read_link(&full).unwrap().to_str().unwrap().into();
                v["size"] = meta.len().into();
            } else if meta.is_dir() {
                v["kind"] = "dir".into();
            } else {
                let data = fs::read(&full).unwrap();
                v["kind"] = "file".into();
                v["size"] = data.len().into();
                v["sha256"] = hex(&Sha256::digest(&data)).into();
                v["nlink"] = meta.nlink().into();
            }
            if !meta.file_type().is_symlink() {
                let mut names = vec![0u8; 4096];
                let n = rustix::fs::listxattr(&full, &mut names).unwrap();
                let mut x = serde_json::Map::new();
                for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
                    let name = std::str::from_utf8(name).unwrap();
                    if name.starts_with("user.") {
                        let mut val = vec![0u8; 65536];
                        let len = rustix::fs::getxattr(&full, name, &mut val).unwrap();
                        x.insert(name.to_string(), hex(&val[..len]).into());
                    }
                }
                if !x.is_empty() {
                    v["xattrs"] = x.into();
                }
            }
            out.push(v);
            if meta.is_dir() {
                walk(root, &full, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    out
}

/// Every golden directory made by scripts/make-golden (tests/fixtures/*/
/// with a manifest.json): a copy, with what git cannot carry put back (its
/// hard links and stored xattrs), passes fsck, mounts with the fixture
/// password, and shows exactly the tree its manifest records, byte for byte.
#[test]
fn every_golden_directory_reads_as_its_manifest() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    if !fixtures.exists() {
        eprintln!("SKIP golden manifests: the source tree is not on this machine (as in the VM)");
        return;
    }
    let mut dirs: Vec<_> = fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").exists())
        .collect();
    dirs.sort();
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    // Each format has one: a fixture lost would pass silently otherwise.
    for want in ["v1-full", "v2", "v2-gcm"] {
        assert!(
            names.iter().any(|n| n == want),
            "no fixture {want}: {names:?}"
        );
    }
    for (dir, name) in dirs.iter().zip(&names) {
        let read = |f: &str| -> serde_json::Value {
            serde_json::from_slice(&fs::read(dir.join(f)).unwrap()).unwrap()
        };
        let Some(m) = copy_of(&format!("golden-{name}"), &dir.join("cipher")) else {
            return;
        };
        for pair in read("backing-hardlinks.json").as_array().unwrap() {
            let pair: Vec<&str> = pair
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            for other in &pair[1..] {
                fs::remove_file(m.cipher.join(other)).unwrap();
                fs::hard_link(m.cipher.join(pair[0]), m.cipher.join(other)).unwrap();
            }
        }
        for x in read("backing-xattrs.json").as_array().unwrap() {
            use base64::Engine;
            let value = base64::engine::general_purpose::STANDARD
                .decode(x["value"].as_str().unwrap())
                .unwrap();
            rustix::fs::setxattr(
                m.cipher.join(x["path"].as_str().unwrap()),
                x["name"].as_str().unwrap(),
                &value,
                rustix::fs::XattrFlags::empty(),
            )
            .unwrap();
        }
        assert_fsck_clean(&m, name);
        m.mount();
        let want = read("manifest.json");
        let got = manifest_of(&m.plain);
        let want = want.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: entries");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g, w, "{name}");
        }
    }
}
