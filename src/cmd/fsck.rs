//! `cipherfs fsck`: unlock, run the checker (crate::fsck), print what it
//! found, and with --repair remove what is provably garbage.

use super::outln;
use std::path::Path;

use super::{count, load_config, unlock};
use crate::exitcode::{self, Failure};
use crate::{fsck, password};

pub fn run(cipherdir: &Path, repair: bool, password: &password::Source) -> Result<(), Failure> {
    let config = load_config(cipherdir)?;
    let master = unlock(&config, password)?;
    let checker = fsck::Checker::new(cipherdir, &config, &master)
        .map_err(|e| Failure::new(exitcode::OTHER, e.to_string()))?;
    let report = checker.run();
    for p in &report.problems {
        outln!("{p}");
    }
    let garbage = report.problems.iter().filter(|p| p.garbage).count();
    let mut left = report.problems.len();
    if repair && garbage > 0 {
        left -= garbage - fsck::repair(&report);
    }
    outln!(
        "{}: {} checked, {}, {garbage} of them garbage{}",
        cipherdir.display(),
        count(report.entries as usize, "entry", "entries"),
        count(report.problems.len(), "problem", "problems"),
        if garbage > 0 && !repair {
            " (--repair removes those)"
        } else {
            ""
        }
    );
    if left == 0 {
        return Ok(());
    }
    Err(Failure::new(
        exitcode::DAMAGED,
        format!(
            "{} left in {}",
            count(left, "problem", "problems"),
            cipherdir.display()
        ),
    ))
}
