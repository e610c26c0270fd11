//! `cipherfs passwd`: a new password for the same master key, proven by the
//! old password or by the master key itself.

use std::path::{Path, PathBuf};

use super::{load_config, recover, unlock};
use crate::exitcode::{self, Failure};
use crate::password;

pub fn run(
    cipherdir: &Path,
    old: &password::Source,
    new_passfile: Option<&PathBuf>,
    masterkey_file: Option<&PathBuf>,
) -> Result<(), Failure> {
    let config = load_config(cipherdir)?;
    let master = match masterkey_file {
        // No old password: the key proves itself on the directory's names.
        Some(f) => {
            let master = recover::read_master_key(f)?;
            recover::check_key(
                cipherdir,
                &master,
                config.params.name_mode,
                config.params.format_version,
            )?;
            master
        }
        None => unlock(&config, old)?,
    };
    let new_source = match new_passfile {
        Some(f) => password::Source::File(f.clone()),
        None => password::Source::Prompt,
    };
    let new_pw = password::read(&new_source, "New password", true)
        .map_err(|e| Failure::new(exitcode::USAGE, e))?;
    config.rewrap(&master, &new_pw)?.save(cipherdir)?;
    eprintln!("cipherfs: password changed");
    Ok(())
}
