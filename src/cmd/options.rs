//! The `-o a,b=c` list of `cipherfs mount` (mount(8) style), applied over
//! the flags: cipherfs's own options, mount(8)'s that mean nothing here,
//! and the few the mount call takes; anything else is refused by name
//! before mounting, instead of by a bare EINVAL from the kernel.

use super::mount::MountOptions;
use crate::exitcode::{self, Failure};
use crate::password;

/// The -o options cipherfs itself takes, as the refusal of others lists them.
pub const OWN_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "allow_other",
    "default_permissions",
    "backend=",
    "passfile=",
    "extpass=",
    "idle=",
    "pidfile=",
    "masterkey_file=",
    "debug_names",
    "noxattr",
    "acl",
    "nonempty",
    "sharedstorage",
    "nosharedstorage",
    "max_read=",
    "fsname=",
    "subtype=",
];

/// Generic mount flags, which go to the mount call as flags.
pub const GENERIC_FLAGS: &[&str] = &[
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "async",
    "sync",
    "atime",
    "noatime",
    "dirsync",
    "relatime",
    "strictatime",
    "nodiratime",
    "diratime",
    "lazytime",
    "nolazytime",
];

fn usage(message: impl Into<String>) -> Failure {
    Failure::new(exitcode::USAGE, message)
}

/// Applies every option of `list` (each item comma-separated) to `opts`.
pub fn apply(opts: &mut MountOptions, list: &[String]) -> Result<(), Failure> {
    for o in list
        .iter()
        .flat_map(|l| l.split(','))
        .filter(|o| !o.is_empty())
    {
        let (k, v) = o.split_once('=').map_or((o, None), |(k, v)| (k, Some(v)));
        match (k, v) {
            ("ro", None) => opts.read_only = true,
            ("rw", None) => opts.read_only = false,
            ("allow_other", None) => opts.allow_other = true,
            ("default_permissions", None) => opts.default_permissions = true,
            ("backend", Some(b)) => opts.backend = b.parse().map_err(usage)?,
            ("passfile", Some(f)) => opts.password = password::Source::File(f.into()),
            ("extpass", Some(c)) => opts.password = password::Source::Command(c.into()),
            ("idle", Some(d)) => opts.idle = Some(parse_duration(d).map_err(usage)?),
            ("pidfile", Some(f)) => opts.pidfile = Some(f.into()),
            ("masterkey_file", Some(f)) => opts.masterkey_file = Some(f.into()),
            ("debug_names", None) => opts.debug_names = true,
            ("noxattr", None) => opts.no_xattr = true,
            ("acl", None) => opts.acl = true,
            ("nonempty", None) => opts.nonempty = true,
            ("sharedstorage", None) => opts.shared_storage = Some(true),
            ("nosharedstorage", None) => opts.shared_storage = Some(false),
            // The mount's source and type: kept for the mount call.
            ("subtype" | "fsname", Some(_)) => opts.extra.push(o.to_string()),
            (k, _) if crate::helper::is_mount8_option(k) => {}
            ("kernel_cache", None) => {
                return Err(usage(
                    "mount option kernel_cache is not offered: the kernel would keep serving \
                     old contents after the cipher directory changes underneath (synced or \
                     shared storage); cipherfs revalidates instead",
                ))
            }
            (k, v) if is_passed_to_the_kernel(k, v) => opts.extra.push(o.to_string()),
            _ => {
                return Err(usage(format!(
                    "unknown mount option {o:?}; cipherfs takes {} and the generic \
                     flags {} (see cipherfs(1) and mount.cipherfs(8))",
                    OWN_OPTIONS.join(", "),
                    GENERIC_FLAGS.join(", ")
                )))
            }
        }
    }
    if opts.acl && opts.no_xattr {
        return Err(usage(
            "acl and noxattr cannot go together: ACLs are stored as extended attributes",
        ));
    }
    Ok(())
}

/// Options the mount call itself understands: the generic flags, and
/// FUSE's max_read= (a number). Anything else it would refuse with a bare
/// EINVAL, so it is refused here by name instead.
fn is_passed_to_the_kernel(key: &str, value: Option<&str>) -> bool {
    match value {
        None => GENERIC_FLAGS.contains(&key),
        Some(v) => key == "max_read" && v.parse::<u32>().is_ok(),
    }
}

/// "90", "90s", "10m", "2h" as a duration.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?} is not a duration like 90s, 10m, 1h or 1h30m");
    // Number-unit pairs, as in 1h30m; a bare number is seconds.
    let mut secs: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "" if digits == s.trim().len() => 1,
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        secs = n
            .checked_mul(scale)
            .and_then(|v| secs.checked_add(v))
            .ok_or_else(bad)?;
    }
    if secs == 0 {
        return Err("the idle time must be at least one second (leave --idle out for none)".into());
    }
    Ok(std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("90"), Ok(90));
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("10m"), Ok(600));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("2m30s"), Ok(150));
        assert!(secs("0").unwrap_err().contains("at least one second"));
        assert!(secs("0s").is_err());
        for bad in ["", "h", "1d", "1h30", "m5", "1.5h", "-1s"] {
            assert!(secs(bad).is_err(), "{bad:?}");
        }
    }
}
