//! The check scripts users point at a mount (scripts/smoke, scripts/stress),
//! run against a real cipherfs mount; the stress self-test must fail.

mod common;

use std::process::Command;

use common::mount::Mounted;

fn script(name: &str) -> String {
    format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Whether the source tree is here to read (it is not in the VM, where
/// only the test binaries are copied); says why not.
fn source_tree(test: &str) -> bool {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("Cargo.toml")
        .exists();
    if !here {
        eprintln!("SKIP {test}: the source tree is not on this machine (as in the VM)");
    }
    here
}

#[test]
fn smoke_and_stress_pass_on_a_mount_and_catch_wrong_data() {
    let Some(m) = Mounted::new("scripts", &["--sector-size", "1024"]) else {
        return;
    };
    let smoke = Command::new(script("smoke"))
        .arg(&m.plain)
        .output()
        .unwrap();
    assert!(
        smoke.status.success(),
        "{}{}",
        String::from_utf8_lossy(&smoke.stdout),
        String::from_utf8_lossy(&smoke.stderr)
    );
    assert!(String::from_utf8_lossy(&smoke.stdout).contains("checks passed"));
    let stress = Command::new(script("stress"))
        .arg(&m.plain)
        .args(["8", "4"])
        .output()
        .unwrap();
    assert!(
        stress.status.success(),
        "{}{}",
        String::from_utf8_lossy(&stress.stdout),
        String::from_utf8_lossy(&stress.stderr)
    );
    let text = String::from_utf8_lossy(&stress.stdout).into_owned();
    let ops: u64 = text
        .split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(ops >= 100, "stress did too little: {text}");
    let selftest = Command::new(script("stress"))
        .arg(&m.plain)
        .args(["3", "2"])
        .env("CIPHERFS_STRESS_SELFTEST", "1")
        .output()
        .unwrap();
    assert_eq!(
        selftest.status.code(),
        Some(1),
        "the stress check must catch planted damage"
    );
    // Nothing left behind in the mount.
    assert_eq!(std::fs::read_dir(&m.plain).unwrap().count(), 0);
}

/// The example mount unit orders itself after the cipher directory's
/// filesystem and not after local-fs.target (a cycle for a mount without
/// nofail, which is ordered before it).
#[test]
fn the_example_mount_unit_has_no_ordering_cycle() {
    if !source_tree("mount unit") {
        return;
    }
    let unit = std::fs::read_to_string(script("systemd/srv-plain.mount")).unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(str::to_string)
    };
    assert!(
        !unit
            .lines()
            .any(|l| l.starts_with("After=") && l.contains("local-fs.target")),
        "{unit}"
    );
    let what = value("What").expect("What=");
    assert_eq!(
        value("RequiresMountsFor").as_deref(),
        Some(what.as_str()),
        "{unit}"
    );
}

/// The README names the Rust version Cargo.toml asks for, and every
/// prerequisite of its first command.
#[test]
fn the_readme_names_the_rust_version_and_the_prerequisites() {
    if !source_tree("readme") {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let cargo = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let version = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|r| r.strip_suffix('"'))
        .expect("rust-version in Cargo.toml");
    assert!(
        readme.contains(&format!("Rust {version} or newer")),
        "README lacks Rust {version}"
    );
    let first = readme
        .lines()
        .find(|l| l.contains("cargo build --release") && l.contains("cipherfs mount"))
        .expect("the first command");
    for needed in ["build-essential", "fuse3", "rustup.rs", "git clone"] {
        assert!(
            first.contains(needed),
            "the first command lacks {needed}: {first}"
        );
    }
}
