//! cipherfs.conf: round trip, wrong password, tampering, refusal of what this
//! version cannot honour, atomic save with mode 0400.

use std::os::unix::fs::PermissionsExt;

use cipherfs::config::{Config, ConfigError, NameMode, NewConfig, CONFIG_NAME};
use cipherfs::crypto::kdf::KdfParams;
use cipherfs::crypto::MasterKey;

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
        ("\"name_mode\": \"cts-cbc\"", "\"name_mode\": \"plaintext\""),
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
        text.replacen("\"format_version\": 1", "\"format_version\": 2", 1),
        "format version 2; this cipherfs reads version 1",
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
