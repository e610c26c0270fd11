//! `cipherfs info`: a cipher directory's settings, in the config's own
//! spellings (cipherfs(5)); the master key only when asked.

use super::outln;
use std::path::Path;

use super::{load_config, master_hex, unlock};
use crate::config::NameMode;
use crate::exitcode::Failure;
use crate::names::HCTR2;
use crate::password;
use crate::skcipher::{Backend, BackendChoice, Skcipher};

pub fn run(
    cipherdir: &Path,
    show_master: bool,
    password: &password::Source,
) -> Result<(), Failure> {
    let config = load_config(cipherdir)?;
    let p = &config.params;
    outln!("format version   {}", p.format_version);
    outln!(
        "content cipher   {} ({}-byte key)",
        p.content_cipher,
        p.content_key_bytes
    );
    outln!("sector size      {}", p.sector_size);
    outln!("names            {}", p.name_mode.spelling());
    outln!("features         {}", p.feature_flags.join(", "));
    outln!(
        "kdf              {} m={} KiB t={} p={}",
        p.kdf,
        p.kdf_params.memory_kib,
        p.kdf_params.iterations,
        p.kdf_params.parallelism
    );
    // What `mount --backend auto` would run each algorithm on, here.
    let content = crate::skcipher::select(BackendChoice::Auto, &p.content_cipher)?;
    outln!(
        "content here     {} on {} ({})",
        p.content_cipher,
        content.backend,
        content.reason
    );
    if p.name_mode == NameMode::Hctr2 {
        let names = crate::skcipher::select(BackendChoice::Auto, HCTR2)?;
        let lacks = if Skcipher::has(HCTR2, Backend::Afalg) {
            ""
        } else {
            "; afalg here has no hctr2(aes), so names run in-process whatever --backend says"
        };
        outln!(
            "names here       {HCTR2} on {} ({}){lacks}",
            names.backend,
            names.reason
        );
    }
    if show_master {
        let master = unlock(&config, password)?;
        outln!("master key       {}", &*master_hex(&master));
    }
    Ok(())
}
