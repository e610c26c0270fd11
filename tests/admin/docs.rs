//! The documentation says what `--help` says: every long option of every
//! subcommand, and every `-o` option `mount --help` lists, is in cipherfs(1).

use std::process::Command;

use crate::common::mount::BIN;

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

/// The subcommands the top-level --help lists.
fn subcommands() -> Vec<String> {
    let subcommands: Vec<String> = help(&[])
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(subcommands.len() >= 8, "{subcommands:?}");
    subcommands
}

fn no_binary() -> bool {
    if std::path::Path::new(BIN).exists() {
        return false;
    }
    eprintln!("SKIP docs: the cipherfs binary is not on this machine (as in the VM)");
    true
}

/// Each option's help block: its first line and the lines that continue it.
fn option_blocks(help: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in help
        .lines()
        .skip_while(|l| !l.starts_with("Options:"))
        .skip(1)
    {
        let t = line.trim_start();
        if t.starts_with('-') {
            blocks.push(t.to_string());
        } else if let Some(last) = blocks.last_mut() {
            last.push(' ');
            last.push_str(t);
        }
    }
    blocks
}

#[test]
fn each_default_is_shown_once() {
    if no_binary() {
        return;
    }
    let mut twice = Vec::new();
    for sub in subcommands() {
        for block in option_blocks(&help(&[&sub])) {
            // The option default_permissions is a name, not a default.
            let text = block.replace("default_permissions", "");
            let n = text
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| w.eq_ignore_ascii_case("default"))
                .count();
            if n > 1 {
                twice.push(format!("{sub}: {block}"));
            }
        }
    }
    assert!(twice.is_empty(), "defaults said twice: {twice:#?}");
}

/// Every option a completion script offers is one --help lists: nothing
/// hidden (as the daemon protocol once was) is offered for completion.
#[test]
fn completions_offer_only_listed_options() {
    if no_binary() {
        return;
    }
    let mut listed: Vec<String> = long_options(&help(&[]));
    for sub in subcommands() {
        listed.extend(long_options(&help(&[&sub])));
    }
    listed.extend(["help".to_string(), "version".to_string()]);
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut script = String::from_utf8(out.stdout).unwrap();
        if shell == "fish" {
            // Its helper functions say `set -l cmd`: only `complete` lines offer options.
            script = script
                .lines()
                .filter(|l| l.starts_with("complete "))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let mut offered: Vec<&str> = Vec::new();
        for (i, _) in script.match_indices(if shell == "fish" { " -l " } else { "--" }) {
            let rest = &script[i + if shell == "fish" { 4 } else { 2 }..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .unwrap_or(rest.len());
            if end > 1 && rest.as_bytes()[0].is_ascii_lowercase() {
                offered.push(&rest[..end]);
            }
        }
        assert!(
            offered.len() > 20,
            "{shell}: too few options found: {offered:?}"
        );
        let unlisted: Vec<&&str> = offered
            .iter()
            .filter(|o| !listed.iter().any(|l| l == *o))
            .collect();
        assert!(
            unlisted.is_empty(),
            "{shell} completes options --help does not list: {unlisted:?}"
        );
    }
}

#[test]
fn every_option_in_help_is_in_the_man_page() {
    let man_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/cipherfs.1");
    if !man_file.exists() || !std::path::Path::new(BIN).exists() {
        eprintln!("SKIP docs: the source tree and binary are not on this machine (as in the VM)");
        return;
    }
    let man = man_page();
    let subcommands = subcommands();
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
