//! Names as a writer of the cipher directory sees them, through real
//! mounts of both formats: the format 1 guess-confirmation attack (choose
//! an empty directory's IV, let the user name a file there) works on format
//! 1 and fails on format 2; names sharing a prefix share a stored block in
//! format 1 and nothing in format 2; format 2's stored names decrypt with
//! an independent HCTR2 (hctr2-rs) from cipherfs(5)'s rules alone.

use std::fs;
use std::path::Path;

use crate::common::independent::decrypt_name_v2;
use crate::common::mount::Mounted;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

/// The backing entries of a cipher directory, cipherfs's own files left out.
fn stored_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("cipherfs.") && !n.starts_with(".cipherfs."))
        .collect();
    v.sort();
    v
}

/// A 16-byte block of `name`, NUL-padded.
fn block(name: &[u8]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..name.len()].copy_from_slice(name);
    b
}

/// The attack from issue 16: with `d` empty, set its IV to
/// IV_root ^ P("salary-2025.xls") ^ P("desktop.ini"); the user then makes
/// `d/desktop.ini`. Returns (the stored `/salary-2025.xls`, the stored
/// `d/desktop.ini`).
fn diriv_attack(format: &str) -> Option<(String, String)> {
    let m = Mounted::new(
        &format!("diriv-attack-{format}"),
        &["--format-version", format],
    )?;
    fs::write(m.plain.join("salary-2025.xls"), b"the secret").unwrap();
    fs::create_dir(m.plain.join("d")).unwrap();
    m.unmount();
    let secret = stored_names(&m.cipher)
        .into_iter()
        .find(|n| m.cipher.join(n).is_file())
        .unwrap();
    let d = stored_names(&m.cipher)
        .into_iter()
        .find(|n| m.cipher.join(n).is_dir())
        .unwrap();
    let root_iv = fs::read(m.cipher.join("cipherfs.diriv")).unwrap();
    let (p1, p2) = (block(b"salary-2025.xls"), block(b"desktop.ini"));
    let forged: Vec<u8> = (0..16).map(|i| root_iv[i] ^ p1[i] ^ p2[i]).collect();
    let iv_path = m.cipher.join(&d).join("cipherfs.diriv");
    let _ = fs::remove_file(&iv_path);
    fs::write(&iv_path, &forged).unwrap();
    m.mount();
    fs::write(m.plain.join("d/desktop.ini"), b"[.ShellClassInfo]").unwrap();
    m.unmount();
    let planted = stored_names(&m.cipher.join(&d)).pop().unwrap();
    Some((secret, planted))
}

#[test]
fn a_chosen_directory_iv_confirms_a_guessed_name_in_format_1_only() {
    let Some((secret, planted)) = diriv_attack("1") else {
        return;
    };
    assert_eq!(
        secret, planted,
        "format 1's known weakness no longer reproduces: update cipherfs(5)"
    );
    let Some((secret, planted)) = diriv_attack("2") else {
        return;
    };
    assert_ne!(secret, planted, "format 2 let a chosen IV confirm a name");
    let (a, b) = (
        B64URL.decode(&secret).unwrap(),
        B64URL.decode(&planted).unwrap(),
    );
    assert!(
        !a.chunks(16).any(|x| b.chunks(16).any(|y| x == y)),
        "format 2 stored names share a block"
    );
}

/// Names sharing their first 16 bytes: format 1 stores a shared first
/// block (CTS-CBC, fscrypt's documented leak), format 2 shares nothing.
#[test]
fn names_sharing_a_prefix_share_stored_blocks_in_format_1_only() {
    for (format, shares) in [("1", true), ("2", false)] {
        let Some(m) = Mounted::new(&format!("prefix-{format}"), &["--format-version", format])
        else {
            return;
        };
        for n in [
            "quarterly-report-2025-Q1.pdf",
            "quarterly-report-2025-Q2.pdf",
        ] {
            fs::write(m.plain.join(n), b"x").unwrap();
        }
        let raw: Vec<Vec<u8>> = stored_names(&m.cipher)
            .iter()
            .map(|n| B64URL.decode(n).unwrap())
            .collect();
        assert_eq!(raw.len(), 2);
        let shared = raw[0].chunks(16).any(|x| raw[1].chunks(16).any(|y| x == y));
        assert_eq!(shared, shares, "format {format}");
    }
}

/// Every stored name at the root and in a subdirectory of a format 2
/// directory decrypts, with an independent HCTR2 and the rules of
/// cipherfs(5), to the names the mount shows; long names through their
/// companion.
#[test]
fn format_2_names_decrypt_independently() {
    let Some(m) = Mounted::new("names-v2-independent", &[]) else {
        return;
    };
    let long = "n".repeat(200);
    let mut want = vec![
        "a".to_string(),
        "exactly-thirty-two-bytes-long-ab".to_string(),
        "ünïcödé name".to_string(),
        long.clone(),
    ];
    for n in &want {
        fs::write(m.plain.join(n), b"x").unwrap();
    }
    fs::create_dir(m.plain.join("sub")).unwrap();
    fs::write(m.plain.join("sub/inner"), b"y").unwrap();
    want.push("sub".into());
    want.sort();
    let master = m.master_key();
    let decrypt_dir = |dir: &Path| -> Vec<String> {
        let iv: [u8; 16] = fs::read(dir.join("cipherfs.diriv"))
            .unwrap()
            .try_into()
            .unwrap();
        let mut got: Vec<String> = stored_names(dir)
            .iter()
            .map(|n| String::from_utf8(decrypt_name_v2(&master, &iv, n).unwrap()).unwrap())
            .collect();
        // Long names: the entry is a hash, the companion holds the name.
        for e in fs::read_dir(dir).unwrap() {
            let n = e.unwrap().file_name().into_string().unwrap();
            if n.starts_with("cipherfs.longname.") && n.ends_with(".name") {
                let full = fs::read_to_string(dir.join(&n)).unwrap();
                got.push(String::from_utf8(decrypt_name_v2(&master, &iv, &full).unwrap()).unwrap());
            }
        }
        got.sort();
        got
    };
    assert_eq!(decrypt_dir(&m.cipher), want);
    let sub = stored_names(&m.cipher)
        .into_iter()
        .find(|n| m.cipher.join(n).is_dir())
        .unwrap();
    assert_eq!(decrypt_dir(&m.cipher.join(sub)), vec!["inner".to_string()]);
}
