//! POSIX ACLs with `--acl`, as three ordinary users meet them on a root
//! mount with allow_other, step by step against a local directory: an ACL
//! grants one user and not another, a default ACL is inherited by new files
//! and directories, chmod rewrites the mask, `cp -a` and `getfacl` round-trip.
//! Without `--acl`, setting an ACL fails at once with ENOTSUP.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::mount::Mounted;
use crate::common::users::{as_named_user, TestUser};

const OWNER: &str = "cipherfs-aa";
const GRANTED: &str = "cipherfs-ab";
const OTHER: &str = "cipherfs-ac";

fn tools_present(test: &str) -> bool {
    let ok = std::process::Command::new("setfacl")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("CIPHERFS_REQUIRE_FUSE").as_deref() != Ok("1"),
            "{test}: CIPHERFS_REQUIRE_FUSE=1 but setfacl is not installed (apt-get install acl)"
        );
        eprintln!("SKIP {test}: setfacl is not installed (apt-get install acl)");
    }
    ok
}

#[test]
fn acls_grant_inherit_and_follow_chmod_as_on_a_local_filesystem() {
    let Some(mut m) = Mounted::new("acl", &[]) else {
        return;
    };
    if !tools_present("acl") {
        return;
    }
    let users = [OWNER, GRANTED, OTHER].map(TestUser::create);
    if users.iter().any(Option::is_none) {
        return;
    }
    // Without --acl: a quick, clear refusal.
    fs::write(m.plain.join("plain"), b"x").unwrap();
    let o = std::process::Command::new("setfacl")
        .args(["-m", "u:nobody:r"])
        .arg(m.plain.join("plain"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("Operation not supported"));

    m.extra = vec!["--acl".into(), "--allow-other".into()];
    m.remount();
    let reference = m.root.join("reference");
    fs::create_dir_all(&reference).unwrap();
    let steps: &[(&str, &str)] = &[
        (
            OWNER,
            "echo secret > f && chmod 600 f && setfacl -m u:cipherfs-ab:r f",
        ),
        (GRANTED, "cat f"),
        (OTHER, "cat f"),
        (
            OWNER,
            "mkdir d && setfacl -d -m u:cipherfs-ab:rwx d && echo x > d/new && mkdir d/sub",
        ),
        (GRANTED, "echo more >> d/new && cat d/new"),
        (OTHER, "echo more >> d/new"),
        (GRANTED, "echo y > d/sub/from-granted && ls d/sub"),
        (OWNER, "chmod 600 f"),
        (GRANTED, "cat f"),
        (OWNER, "chmod 640 f && setfacl -m u:cipherfs-ac:rw f"),
        (OTHER, "echo over > f && cat f"),
        (OWNER, "setfacl -b f && getfacl -c f"),
        (OWNER, "cp -a d/new copy && getfacl -c copy d/new"),
        (
            OWNER,
            "setfacl -k d && echo z > d/after && getfacl -c d/after",
        ),
        (OWNER, "find . | sort | xargs getfacl"),
        (OWNER, "ls -l f copy | cut -c1-11"),
    ];
    let mut answers = Vec::new();
    for root in [&m.plain, &reference] {
        let w = root.join("w");
        fs::create_dir(&w).unwrap();
        fs::set_permissions(&w, fs::Permissions::from_mode(0o777)).unwrap();
        let mut got = Vec::new();
        for (user, cmd) in steps {
            let o = as_named_user(user, &format!("umask 022; cd {} && {cmd}", w.display()));
            let err = String::from_utf8_lossy(&o.stderr);
            // The reason, without the tool's own wording of the path.
            let why = err
                .lines()
                .map(|l| l.rsplit(": ").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("|");
            got.push((
                *user,
                *cmd,
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                why,
            ));
        }
        answers.push(got);
    }
    for (a, b) in answers[0].iter().zip(&answers[1]) {
        assert_eq!(a, b, "mount (left) and local directory (right) differ");
    }
    // The cases met both outcomes.
    let codes: Vec<_> = answers[1].iter().map(|a| a.2).collect();
    assert!(
        codes.contains(&Some(0)) && codes.iter().any(|c| *c != Some(0)),
        "{codes:?}"
    );
    // ACLs survive a remount.
    let before = as_named_user(
        OWNER,
        &format!(
            "cd {} && find . | sort | xargs getfacl",
            m.plain.join("w").display()
        ),
    );
    m.remount();
    let after = as_named_user(
        OWNER,
        &format!(
            "cd {} && find . | sort | xargs getfacl",
            m.plain.join("w").display()
        ),
    );
    assert_eq!(before.stdout, after.stdout);
    drop(users);
}
