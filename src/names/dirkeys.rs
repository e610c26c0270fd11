//! Format 2's names keys, one per directory: HKDF(master, "cipherfs v2
//! names" || the directory's diriv), each an `hctr2(aes)` handle. The
//! directories in use are few, so the most recent handles are kept; a key is
//! derived again (microseconds) when its directory comes back.

use std::sync::{Arc, Mutex};

use super::{NameError, DIRIV_LEN, HCTR2, NAMES_V2_INFO};
use crate::crypto::KeyExpander;
use crate::skcipher::{Backend, Skcipher};

/// How many directories' keys stay allocated (each wipes itself on drop).
const KEPT: usize = 64;

pub(crate) struct DirKeys {
    expander: KeyExpander,
    backend: Backend,
    /// Most recent first.
    kept: Mutex<Vec<([u8; DIRIV_LEN], Arc<Skcipher>)>>,
}

impl DirKeys {
    pub(crate) fn new(expander: KeyExpander, backend: Backend) -> Self {
        Self {
            expander,
            backend,
            kept: Mutex::new(Vec::with_capacity(KEPT)),
        }
    }

    /// The names key of the directory whose IV is `diriv`.
    pub(crate) fn get(&self, diriv: &[u8; DIRIV_LEN]) -> Result<Arc<Skcipher>, NameError> {
        {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = kept.iter().position(|(iv, _)| iv == diriv) {
                let hit = kept.remove(i);
                let tfm = Arc::clone(&hit.1);
                kept.insert(0, hit);
                return Ok(tfm);
            }
        }
        let tfm = Skcipher::alloc(HCTR2, self.backend)?;
        tfm.setkey(&self.expander.derive(&[NAMES_V2_INFO, diriv], 32)?)?;
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.insert(0, (*diriv, Arc::clone(&tfm)));
        kept.truncate(KEPT);
        Ok(tfm)
    }
}
