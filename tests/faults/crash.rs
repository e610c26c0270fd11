//! The daemon killed with SIGKILL in the middle of a stream of writes: the
//! mount comes back, every file is readable, every sector holds a version
//! that was written to it, and only sectors being written at the instant of
//! the kill may hold neither the old nor the new version (counted).

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::mount::Mounted;

const S: usize = 4096;
const FILES: usize = 4;
const SECTORS: usize = 32;

/// Sector `k` of file `f` at version `v`: a 16-byte label, then bytes that
/// follow from it, so any sector read back names the write it came from.
fn sector(f: usize, k: usize, v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(S);
    out.extend_from_slice(&(f as u32).to_le_bytes());
    out.extend_from_slice(&(k as u32).to_le_bytes());
    out.extend_from_slice(&v.to_le_bytes());
    let mut x = (v.wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ ((f * SECTORS + k) as u64);
    while out.len() < S {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The version a stored sector holds, if it is an intact written one.
fn version_of(f: usize, k: usize, got: &[u8]) -> Option<u64> {
    let v = u64::from_le_bytes(got.get(8..16)?.try_into().ok()?);
    (got == sector(f, k, v).as_slice()).then_some(v)
}

#[derive(Default)]
struct Model {
    /// Last version whose write returned, per (file, sector).
    done: HashMap<(usize, usize), u64>,
    /// Version being written when the daemon died.
    in_flight: HashMap<(usize, usize), u64>,
    writes: u64,
}

fn writer(paths: Vec<(usize, PathBuf)>, model: Arc<Mutex<Model>>, seed: u64) {
    let files: Vec<_> = paths
        .iter()
        .map(|(f, p)| {
            let h = OpenOptions::new().read(true).write(true).open(p).unwrap();
            (*f, h)
        })
        .collect();
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for v in 1.. {
        let (f, h) = &files[next() as usize % files.len()];
        let k = next() as usize % SECTORS;
        let n = (1 + next() as usize % 4).min(SECTORS - k);
        let mut buf = Vec::with_capacity(n * S);
        for i in k..k + n {
            buf.extend_from_slice(&sector(*f, i, v));
        }
        {
            let mut m = model.lock().unwrap();
            for i in k..k + n {
                m.in_flight.insert((*f, i), v);
            }
        }
        let ok =
            h.write_all_at(&buf, (k * S) as u64).is_ok() && (v % 8 != 0 || h.sync_data().is_ok());
        let mut m = model.lock().unwrap();
        if !ok {
            // The daemon is gone: this write's sectors stay in flight.
            return;
        }
        for i in k..k + n {
            m.in_flight.remove(&(*f, i));
            m.done.insert((*f, i), v);
        }
        m.writes += 1;
    }
}

crate::in_both_content_modes!(sigkill_mid_write_loses_no_finished_sector);

fn sigkill_mid_write_loses_no_finished_sector(mode: crate::common::ContentMode) {
    let Some(mut m) = Mounted::new(&mode.test("crash"), mode.init) else {
        return;
    };
    let paths: Vec<_> = (0..FILES).map(|f| m.plain.join(format!("f{f}"))).collect();
    let model = Arc::new(Mutex::new(Model::default()));
    for (f, p) in paths.iter().enumerate() {
        let mut all = Vec::new();
        for k in 0..SECTORS {
            all.extend_from_slice(&sector(f, k, 0));
            model.lock().unwrap().done.insert((f, k), 0);
        }
        fs::write(p, all).unwrap();
    }
    let (mut torn, mut in_flight_seen, mut writes) = (0usize, 0usize, 0u64);
    for round in 0..6u64 {
        let pid = m.remount_with_pidfile();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let mine = (0..FILES)
                    .filter(|f| f % 2 == w)
                    .map(|f| (f, paths[f].clone()))
                    .collect();
                let model = Arc::clone(&model);
                std::thread::spawn(move || writer(mine, model, round * 7919 + w as u64 + 1))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + 97 * round));
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        for w in writers {
            w.join().expect("a writer panicked");
        }
        // The dead mount answers ENOTCONN until unmounted; then a fresh one.
        m.unmount();
        m.extra.clear();
        m.mount();

        let mut model = model.lock().unwrap();
        writes += std::mem::take(&mut model.writes);
        for (f, p) in paths.iter().enumerate() {
            let data = fs::read(p).unwrap_or_else(|e| panic!("f{f} unreadable after a crash: {e}"));
            assert_eq!(data.len(), SECTORS * S, "f{f}: size");
            for k in 0..SECTORS {
                let got = version_of(f, k, &data[k * S..(k + 1) * S]);
                let done = model.done[&(f, k)];
                match model.in_flight.remove(&(f, k)) {
                    None => assert_eq!(
                        got,
                        Some(done),
                        "f{f} sector {k}: a finished write was lost"
                    ),
                    Some(new) => {
                        in_flight_seen += 1;
                        match got {
                            Some(v) if v == done || v == new => {
                                model.done.insert((f, k), v);
                            }
                            Some(v) => {
                                panic!("f{f} sector {k}: version {v}, neither {done} nor {new}")
                            }
                            None => {
                                // Torn at the instant of the kill: from now on
                                // the sector is rewritten before it is judged.
                                torn += 1;
                                let fresh = sector(f, k, 0);
                                OpenOptions::new()
                                    .write(true)
                                    .open(p)
                                    .unwrap()
                                    .write_all_at(&fresh, (k * S) as u64)
                                    .unwrap();
                                model.done.insert((f, k), 0);
                            }
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "crash: 6 SIGKILLs during {writes} finished writes; {in_flight_seen} sectors were being \
         written at a kill, {torn} of them torn (neither old nor new)"
    );
    assert!(writes > 50, "too few writes ({writes}) to mean anything");
}
