//! Ordinary users made for a test (as root), and commands run as them.

use std::process::{Command, Output};

pub fn as_named_user(user: &str, cmd: &str) -> Output {
    Command::new("runuser")
        .args(["-u", user, "--", "sh", "-c", cmd])
        .env("HOME", "/tmp")
        .output()
        .unwrap()
}

pub struct TestUser(pub &'static str);

impl TestUser {
    pub fn create(name: &'static str) -> Option<Self> {
        if !rustix::process::geteuid().is_root()
            || Command::new("runuser").arg("--version").output().is_err()
        {
            eprintln!("SKIP nonroot test: needs root and runuser to create and act as a test user");
            return None;
        }
        let _ = Command::new("userdel").arg(name).output();
        let ok = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/bin/sh", name])
            .status()
            .unwrap();
        assert!(ok.success(), "useradd failed");
        Some(TestUser(name))
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // The user's daemon may still be exiting; -f removes the user anyway.
        for _ in 0..20 {
            if Command::new("userdel")
                .args(["-f", self.0])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
                || Command::new("id")
                    .arg(self.0)
                    .output()
                    .map(|o| !o.status.success())
                    .unwrap_or(true)
            {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}
