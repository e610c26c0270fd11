//! Running as a mount helper. mount(8) runs `mount.cipherfs SPEC DIR [-sfnv]
//! [-N NS] [-o OPTS] [-t TYPE]` for type `cipherfs`, and `mount.fuse3` runs
//! `cipherfs SPEC DIR -o OPTS` for type `fuse.cipherfs`. Both forms become
//! `cipherfs mount SPEC DIR -o OPTS` here, before the normal command line is
//! parsed. In this form `-f` is mount(8)'s "fake": do everything but mount.

use std::ffi::OsString;
use std::path::Path;

pub enum Invocation {
    /// The normal command line.
    Normal(Vec<OsString>),
    /// A helper call, rewritten to the normal form.
    Helper(Vec<OsString>),
    /// `-f` from mount(8): nothing to do.
    Fake,
}

/// `subcommands`: the command line's subcommand names (from clap, so the two
/// cannot drift apart); anything else in first position is a helper call.
pub fn classify(args: Vec<OsString>, subcommands: &[String]) -> Invocation {
    let argv0 = args.first().cloned().unwrap_or_default();
    let called_as_helper = Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("mount."));
    let first = args
        .get(1)
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let looks_like_helper =
        args.len() >= 3 && !first.starts_with('-') && !subcommands.contains(&first);
    if !(called_as_helper || looks_like_helper) {
        return Invocation::Normal(args);
    }
    let mut positional = Vec::new();
    let mut options: Vec<String> = Vec::new();
    let mut fake = false;
    let mut it = args.into_iter().skip(1);
    while let Some(a) = it.next() {
        let s = a.to_string_lossy().into_owned();
        match s.as_str() {
            "-o" => options.extend(it.next().map(|o| o.to_string_lossy().into_owned())),
            "-t" | "-N" => {
                it.next();
            }
            _ if s.starts_with("-o") && s.len() > 2 => options.push(s[2..].to_string()),
            _ if s.starts_with('-')
                && s.len() > 1
                && s[1..].chars().all(|c| "sfnvrw".contains(c)) =>
            {
                fake |= s.contains('f');
                if s.contains('r') {
                    options.push("ro".into());
                }
            }
            _ => positional.push(a),
        }
    }
    if fake {
        return Invocation::Fake;
    }
    if !called_as_helper {
        // mount.fuse3 appends dev and suid to every entry that does not say
        // nodev or nosuid, so they cannot be told from a request: the mount
        // keeps nodev and nosuid, as mount.cipherfs(8) promises. (Type
        // `cipherfs` entries pass through mount(8) alone and may ask.)
        options = options
            .iter()
            .map(|o| {
                o.split(',')
                    .filter(|x| !matches!(*x, "dev" | "suid"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|o| !o.is_empty())
            .collect();
    }
    let mut out = vec![argv0, OsString::from("mount")];
    out.extend(positional);
    if !options.is_empty() {
        out.push("-o".into());
        out.push(options.join(",").into());
    }
    Invocation::Helper(out)
}

/// mount(8)'s and systemd's own options: meaningful to them, not to FUSE.
pub fn is_mount8_option(key: &str) -> bool {
    matches!(
        key,
        "defaults"
            | "auto"
            | "noauto"
            | "nofail"
            | "_netdev"
            | "user"
            | "users"
            | "nouser"
            | "owner"
            | "group"
            | "comment"
            | "loop"
    ) || key.starts_with("x-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn classify(args: Vec<OsString>) -> Invocation {
        let subs: Vec<String> = ["init", "mount", "speed", "help"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        super::classify(args, &subs)
    }

    #[test]
    fn mount_fuse3s_dev_and_suid_are_not_taken_as_requests() {
        let Invocation::Helper(a) = classify(v(&[
            "cipherfs",
            "/srv/c",
            "/srv/p",
            "-o",
            "rw,passfile=/x,allow_other,dev,suid",
        ])) else {
            panic!()
        };
        assert_eq!(a[4..], v(&["-o", "rw,passfile=/x,allow_other"])[..]);
        // mount(8) calling mount.cipherfs passes what the entry says.
        let Invocation::Helper(a) = classify(v(&[
            "/sbin/mount.cipherfs",
            "/srv/c",
            "/srv/p",
            "-o",
            "suid",
        ])) else {
            panic!()
        };
        assert_eq!(a[4..], v(&["-o", "suid"])[..]);
    }

    #[test]
    fn helper_forms_become_the_mount_command() {
        let Invocation::Helper(a) = classify(v(&[
            "/sbin/mount.cipherfs",
            "/srv/c",
            "/srv/p",
            "-n",
            "-o",
            "rw,passfile=/x",
        ])) else {
            panic!()
        };
        assert_eq!(
            a,
            v(&[
                "/sbin/mount.cipherfs",
                "mount",
                "/srv/c",
                "/srv/p",
                "-o",
                "rw,passfile=/x"
            ])
        );
        let Invocation::Helper(a) = classify(v(&["cipherfs", "/srv/c", "/srv/p", "-o", "nofail"]))
        else {
            panic!()
        };
        assert_eq!(
            a,
            v(&["cipherfs", "mount", "/srv/c", "/srv/p", "-o", "nofail"])
        );
        assert!(matches!(
            classify(v(&["mount.cipherfs", "a", "b", "-f"])),
            Invocation::Fake
        ));
        assert!(matches!(
            classify(v(&["cipherfs", "mount", "a", "b"])),
            Invocation::Normal(_)
        ));
        assert!(matches!(
            classify(v(&["cipherfs", "--help"])),
            Invocation::Normal(_)
        ));
        assert!(matches!(
            classify(v(&["cipherfs", "speed"])),
            Invocation::Normal(_)
        ));
        assert!(
            is_mount8_option("x-systemd.automount")
                && is_mount8_option("_netdev")
                && !is_mount8_option("ro")
        );
    }
}
