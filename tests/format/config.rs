//! cipherfs.conf: round trip, wrong password, tampering, refusal of what this
//! version cannot honour, atomic save with mode 0400.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use cipherfs::config::{Config, ConfigError, NameMode, NewConfig, CONFIG_NAME};
use cipherfs::crypto::kdf::KdfParams;
use cipherfs::crypto::MasterKey;

use crate::common::mount::{init_cheap, write_private, BIN};

fn test_config() -> NewConfig {
    NewConfig {
        kdf_params: KdfParams::FLOOR,
        ..NewConfig::default()
    }
}

#[test]
fn round_trip_unlocks_with_the_password_only() {
    let master = MasterKey::generate().unwrap();
    let cfg = Config::create(&test_config(), b"hunter2", &master).unwrap();
    let text = cfg.to_json().unwrap();
    assert!(!text.contains("hunter2"));
    let back = Config::parse(&text).unwrap();
    assert_eq!(back.params, cfg.params);
    assert_eq!(back.unlock(b"hunter2").unwrap().expose(), master.expose());
    let e = back.unlock(b"hunter3").unwrap_err();
    assert!(matches!(e, ConfigError::WrongPasswordOrTampered), "{e}");
    assert_eq!(
        e.to_string(),
        "wrong password or corrupted config (the master key did not authenticate)"
    );
    assert!(back.unlock(b"").is_err());
}

#[test]
fn every_authenticated_field_is_covered_by_gcm() {
    let master = MasterKey::generate().unwrap();
    let text = Config::create(&test_config(), b"pw", &master)
        .unwrap()
        .to_json()
        .unwrap();
    // Each edit keeps the config valid, so only authentication can catch it.
    let edits = [
        ("\"content_key_bytes\": 64", "\"content_key_bytes\": 32"),
        ("\"sector_size\": 4096", "\"sector_size\": 512"),
        ("\"name_mode\": \"hctr2\"", "\"name_mode\": \"plaintext\""),
        ("\"memory_kib\": 1024", "\"memory_kib\": 2048"),
        ("\"dir-iv\",", ""),
    ];
    for (from, to) in edits {
        assert!(text.contains(from), "fixture lacks {from}");
        let edited = text.replacen(from, to, 1);
        let cfg = Config::parse(&edited).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        let e = cfg.unlock(b"pw").unwrap_err();
        assert!(
            matches!(e, ConfigError::WrongPasswordOrTampered),
            "{from} -> {to}: {e}"
        );
    }
    // The content cipher changed to another valid one is caught the same way.
    let cfg = Config::parse(
        &text
            .replacen(
                "\"content_cipher\": \"xts(aes)\"",
                "\"content_cipher\": \"essiv(cbc(aes),sha256)\"",
                1,
            )
            .replacen("\"content_key_bytes\": 64", "\"content_key_bytes\": 32", 1),
    )
    .unwrap();
    assert!(matches!(
        cfg.unlock(b"pw"),
        Err(ConfigError::WrongPasswordOrTampered)
    ));
}

#[test]
fn what_this_version_cannot_honour_is_refused_clearly() {
    let master = MasterKey::generate().unwrap();
    let text = Config::create(&test_config(), b"pw", &master)
        .unwrap()
        .to_json()
        .unwrap();
    let check = |edited: String, want: &str| {
        let e = Config::parse(&edited).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?}, got {e:?}");
    };
    check(
        text.replacen("\"format_version\": 2", "\"format_version\": 3", 1),
        "format version 3; this cipherfs reads versions 1 and 2",
    );
    // A name mode of the other format is refused, not guessed at.
    check(
        text.replacen("\"name_mode\": \"hctr2\"", "\"name_mode\": \"cts-cbc\"", 1),
        "name mode cts-cbc is not one of format 2",
    );
    check(
        text.replacen("\"format_version\": 2", "\"format_version\": 1", 1),
        "name mode hctr2 is not one of format 1",
    );
    check(
        text.replacen("\"dir-iv\"", "\"quantum-names\"", 1),
        "needs feature \"quantum-names\"",
    );
    check(
        text.replacen("\"memory_kib\": 1024", "\"memory_kib\": 8", 1),
        "below the floor",
    );
    check(
        text.replacen("\"sector_size\": 4096", "\"sector_size\": 4000", 1),
        "sector size 4000",
    );
    check(
        text.replacen(
            "\"content_cipher\": \"xts(aes)\"",
            "\"content_cipher\": \"ecb(aes)\"",
            1,
        ),
        "not one cipherfs supports",
    );
    check(text[..text.len() / 2].to_string(), "does not parse");
    check(
        text.replacen(
            "\"kdf\": \"argon2id\"",
            "\"kdf\": \"argon2id\", \"extra\": 1",
            1,
        ),
        "does not parse",
    );
    check(String::new(), "does not parse");
}

#[test]
fn save_is_mode_0400_and_rewrap_uses_a_fresh_salt() {
    let dir = std::env::temp_dir().join(format!("cipherfs-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let master = MasterKey::generate().unwrap();
    let cfg = Config::create(
        &NewConfig {
            name_mode: NameMode::Plaintext,
            ..test_config()
        },
        b"old",
        &master,
    )
    .unwrap();
    cfg.save(&dir).unwrap();
    let mode = std::fs::metadata(dir.join(CONFIG_NAME))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);
    let loaded = Config::load(&dir).unwrap();
    assert!(loaded
        .params
        .feature_flags
        .contains(&"plaintext-names".to_string()));
    let unlocked = loaded.unlock(b"old").unwrap();
    let re = loaded.rewrap(&unlocked, b"new").unwrap();
    assert_ne!(re.params.kdf_salt, loaded.params.kdf_salt);
    re.save(&dir).unwrap();
    let after = Config::load(&dir).unwrap();
    assert!(after.unlock(b"old").is_err());
    assert_eq!(after.unlock(b"new").unwrap().expose(), master.expose());
    assert!(!dir.join(".cipherfs.conf.tmp").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A planted config asking for the most expensive KDF Argon2id allows is
/// refused before any KDF work: under a 1 GiB address-space limit, a KDF
/// that started would fail to allocate its 4 GiB instead of exiting 11.
#[test]
fn a_planted_config_is_refused_before_any_kdf_work() {
    if !std::path::Path::new(BIN).exists() {
        // As in the VM, where only the test binaries are copied.
        eprintln!("SKIP kdf ceiling: the cipherfs binary is not at {BIN}");
        return;
    }
    struct Scratch(std::path::PathBuf);
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    let root = std::env::temp_dir().join(format!("cipherfs-kdfcap-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let _scratch = Scratch(root.clone());
    let (c, p) = (root.join("c"), root.join("p"));
    fs::create_dir_all(&c).unwrap();
    fs::create_dir_all(&p).unwrap();
    let pw = root.join("pw");
    write_private(&pw, "pw\n");
    let init = init_cheap(&pw, &c, &[]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let conf = c.join("cipherfs.conf");
    let text = fs::read_to_string(&conf).unwrap();
    for (edit, why) in [
        ("\"parallelism\": 64", "64 lanes (init writes 1)"),
        ("\"parallelism\": 2", "2 lanes"),
    ] {
        let planted = text
            .replacen("\"memory_kib\": 1024", "\"memory_kib\": 4194304", 1)
            .replacen("\"iterations\": 1", "\"iterations\": 100", 1)
            .replacen("\"parallelism\": 1", edit, 1);
        assert_ne!(planted, text);
        fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&conf, &planted).unwrap();
        for cmd in [
            format!(
                "exec {BIN} mount --passfile {} {} {}",
                pw.display(),
                c.display(),
                p.display()
            ),
            format!(
                "exec {BIN} fsck --passfile {} {}",
                pw.display(),
                c.display()
            ),
            format!(
                "exec {BIN} passwd --passfile {} --new-passfile {} {}",
                pw.display(),
                pw.display(),
                c.display()
            ),
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("ulimit -v 1048576; {cmd}"))
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(11), "{why}: {cmd}: {err}");
            assert!(err.contains("exceed the maximum"), "{why}: {err}");
        }
    }
    fs::write(&conf, &text).unwrap();
}

/// `info` spells settings as the config (cipherfs(5)) does; fsck counts in
/// words, not "problem(s)".
#[test]
fn info_and_fsck_speak_plainly() {
    if !std::path::Path::new(BIN).exists() {
        eprintln!("SKIP info wording: the cipherfs binary is not at {BIN}");
        return;
    }
    let root = std::env::temp_dir().join(format!("cipherfs-wording-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let pw = root.join("pw");
    write_private(&pw, "pw\n");
    let c = root.join("c");
    let run = |args: &[&str]| {
        let o = Command::new(BIN).args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    let (pw_s, c_s) = (pw.to_str().unwrap(), c.to_str().unwrap());
    init_cheap(&pw, &c, &[]);
    let info = run(&["info", c_s]);
    assert!(info.lines().any(|l| l == "format version   2"), "{info}");
    assert!(
        info.lines().any(|l| l == "names            hctr2"),
        "{info}"
    );
    assert!(
        info.lines()
            .any(|l| l.starts_with("names here       hctr2(aes) on ")),
        "{info}"
    );
    let v1 = root.join("v1");
    init_cheap(&pw, &v1, &["--format-version", "1"]);
    let info = run(&["info", v1.to_str().unwrap()]);
    assert!(info.lines().any(|l| l == "format version   1"), "{info}");
    assert!(
        info.lines().any(|l| l == "names            cts-cbc"),
        "{info}"
    );
    assert!(!info.contains("names here"), "{info}");
    let fsck = run(&["fsck", "--passfile", pw_s, c_s]);
    assert!(
        fsck.contains(": 2 entries checked, 0 problems, 0 of them garbage"),
        "{fsck}"
    );
    assert!(!fsck.contains("(s)"), "{fsck}");
    let _ = fs::remove_dir_all(&root);
}
