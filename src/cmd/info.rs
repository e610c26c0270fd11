//! `cipherfs info`: a cipher directory's settings, in the config's own
//! spellings (cipherfs(5)); the master key only when asked.

use std::path::Path;

use super::{load_config, master_hex, unlock};
use crate::config::NameMode;
use crate::exitcode::Failure;
use crate::password;

pub fn run(
    cipherdir: &Path,
    show_master: bool,
    password: &password::Source,
) -> Result<(), Failure> {
    let config = load_config(cipherdir)?;
    let p = &config.params;
    println!("format version   {}", p.format_version);
    println!(
        "content cipher   {} ({}-byte key)",
        p.content_cipher, p.content_key_bytes
    );
    println!("sector size      {}", p.sector_size);
    let names = match p.name_mode {
        NameMode::CtsCbc => "cts-cbc",
        NameMode::Plaintext => "plaintext",
    };
    println!("names            {names}");
    println!("features         {}", p.feature_flags.join(", "));
    println!(
        "kdf              {} m={} KiB t={} p={}",
        p.kdf, p.kdf_params.memory_kib, p.kdf_params.iterations, p.kdf_params.parallelism
    );
    if show_master {
        let master = unlock(&config, password)?;
        println!("master key       {}", &*master_hex(&master));
    }
    Ok(())
}
