//! The documentation says what `--help` says: every long option of every
//! subcommand, and every `-o` option `mount --help` lists, is in cipherfs(1).

mod common;

use std::process::Command;

use common::mount::BIN;

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).arg("--help").output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// cipherfs(1) as plain text: groff's escaped dashes and font changes undone.
fn man_page() -> String {
    let raw =
        std::fs::read_to_string(format!("{}/man/cipherfs.1", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut text = raw.replace("\\-", "-");
    for f in ["\\fR", "\\fB", "\\fI", "\\fP"] {
        text = text.replace(f, "");
    }
    // `.BI passfile= FILE` reads as "passfile= FILE" in the source.
    text.replace("= ", "=")
}

/// The long options in a help text's option lists (not ones it mentions).
fn long_options(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|l| {
            let mut l = l.trim_start();
            // "-v, --verbose": past the short form.
            if l.len() > 4 && l.starts_with('-') && !l.starts_with("--") && &l[2..4] == ", " {
                l = &l[4..];
            }
            let name = l.strip_prefix("--")?;
            let end = name
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(name.len());
            Some(name[..end].to_string())
        })
        .filter(|n| !n.is_empty() && n != "help" && n != "version")
        .collect()
}

#[test]
fn every_option_in_help_is_in_the_man_page() {
    let man_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/cipherfs.1");
    if !man_file.exists() || !std::path::Path::new(BIN).exists() {
        eprintln!("SKIP docs: the source tree and binary are not on this machine (as in the VM)");
        return;
    }
    let man = man_page();
    let top = help(&[]);
    let subcommands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(subcommands.len() >= 8, "{subcommands:?}");
    let mut missing = Vec::new();
    for sub in &subcommands {
        if !man.contains(&format!("cipherfs {sub}")) {
            missing.push(format!("the command {sub}"));
        }
        for opt in long_options(&help(&[sub])) {
            if !man.contains(&format!("--{opt}")) {
                missing.push(format!("{sub} --{opt}"));
            }
        }
    }
    // The -o options mount --help lists.
    let mount = help(&["mount"]);
    let list = mount
        .split("comma-separated:")
        .nth(1)
        .and_then(|r| r.split("and generic flags").next())
        .expect("the -o list in mount --help");
    for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        if !man.contains(o) {
            missing.push(format!("-o {o}"));
        }
    }
    assert!(missing.is_empty(), "cipherfs(1) lacks: {missing:?}");
}
