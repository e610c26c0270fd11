//! The check scripts users point at a mount (scripts/smoke, scripts/stress),
//! run against a real cipherfs mount; the stress self-test must fail.

use crate::common;

use std::process::Command;

use crate::common::mount::Mounted;

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

/// A scratch directory under the system's temporary directory.
fn scratch(test: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cipherfs-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// scripts/install run as `sudo` would run it: a PATH without cargo.
fn install(cwd: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(script("install"))
        .args(args)
        .current_dir(cwd)
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// scripts/install needs no cargo (sudo's PATH has none), takes a relative
/// --destdir from the current directory, puts units under the prefix,
/// strips the binary, and claims nothing about fstab for a staged install.
#[test]
fn the_install_script_works_as_sudo_runs_it() {
    if !source_tree("install") {
        return;
    }
    let bin = common::mount::BIN;
    let dir = scratch("install");
    let (ok, out) = install(
        &dir,
        &["--binary", bin, "--prefix", "/usr", "--destdir", "stage"],
    );
    assert!(ok, "{out}");
    let stage = dir.join("stage");
    let installed = std::fs::read(stage.join("usr/bin/cipherfs")).unwrap();
    let built = std::fs::metadata(bin).unwrap().len();
    // Stripped: no symbol table and no debug sections (the build has both).
    let built_sections = elf_sections(&std::fs::read(bin).unwrap());
    assert!(
        built_sections.iter().any(|s| s == ".symtab"),
        "{built_sections:?}"
    );
    let sections = elf_sections(&installed);
    assert!(
        !sections
            .iter()
            .any(|s| [".symtab", ".debug_info", ".debug_line"].contains(&s.as_str())),
        "the installed binary is not stripped: {sections:?}"
    );
    assert!(
        (installed.len() as u64) < built / 2,
        "{} of {built} bytes",
        installed.len()
    );
    assert_eq!(
        std::fs::read_link(stage.join("sbin/mount.cipherfs")).unwrap(),
        std::path::Path::new("/usr/bin/cipherfs")
    );
    let unit = std::fs::read_to_string(stage.join("usr/lib/systemd/system/cipherfs@.service"))
        .expect("the service under the prefix");
    assert!(unit.contains("/usr/bin/cipherfs"), "{unit}");
    assert!(!stage.join("etc").exists(), "nothing goes to /etc");
    for page in [
        "man1/cipherfs.1",
        "man5/cipherfs.5",
        "man8/mount.cipherfs.8",
    ] {
        assert!(stage.join("usr/share/man").join(page).is_file(), "{page}");
    }
    assert!(stage
        .join("usr/share/bash-completion/completions/cipherfs")
        .is_file());
    assert!(out.contains("staged under"), "{out}");
    assert!(
        !out.contains("now work"),
        "a staged install claims fstab works: {out}"
    );
    let run = Command::new(stage.join("usr/bin/cipherfs"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(run.status.success());

    // Without --binary: the built one, still without cargo.
    if bin.ends_with("release/cipherfs") {
        let (ok, out) = install(&dir, &["--destdir", "default"]);
        assert!(ok, "{out}");
        assert!(dir.join("default/usr/local/bin/cipherfs").is_file());
        assert!(dir
            .join("default/usr/local/lib/systemd/system/cipherfs@.service")
            .is_file());
    }
    let (ok, out) = install(&dir, &["--binary", "no-such-file", "--destdir", "x"]);
    assert!(!ok && out.contains("is not an executable file"), "{out}");
    let (ok, out) = install(&dir, &["--prefix", "usr", "--destdir", "x"]);
    assert!(!ok && out.contains("absolute"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The section names of a 64-bit little-endian ELF file.
fn elf_sections(elf: &[u8]) -> Vec<String> {
    let num = |at: usize, len: usize| {
        elf[at..at + len]
            .iter()
            .rev()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    assert_eq!(&elf[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let (shoff, shentsize, shnum, shstrndx) =
        (num(0x28, 8), num(0x3a, 2), num(0x3c, 2), num(0x3e, 2));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = num(header(shstrndx) + 0x18, 8);
    (0..shnum)
        .map(|i| {
            let start = strtab + num(header(i), 4);
            let end = start + elf[start..].iter().position(|b| *b == 0).unwrap_or(0);
            String::from_utf8_lossy(&elf[start..end]).into_owned()
        })
        .collect()
}
