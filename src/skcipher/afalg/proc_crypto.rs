//! Reads `/proc/crypto` to tell which kernel driver serves an algorithm: the
//! skcipher entry of that name with the highest priority, as the kernel picks.

use std::fs;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProcEntry {
    pub name: String,
    pub driver: String,
    pub module: String,
    pub priority: i64,
    pub kind: String,
    pub selftest: String,
}

pub fn parse(text: &str) -> Vec<ProcEntry> {
    text.split("\n\n")
        .map(|block| {
            let mut e = ProcEntry::default();
            for line in block.lines() {
                let Some((k, v)) = line.split_once(':') else {
                    continue;
                };
                let v = v.trim().to_string();
                match k.trim() {
                    "name" => e.name = v,
                    "driver" => e.driver = v,
                    "module" => e.module = v,
                    "priority" => e.priority = v.parse().unwrap_or(0),
                    "type" => e.kind = v,
                    "selftest" => e.selftest = v,
                    _ => {}
                }
            }
            e
        })
        .filter(|e| !e.name.is_empty())
        .collect()
}

/// The entry that serves `name` as an skcipher, if the kernel lists one.
pub fn best(entries: &[ProcEntry], name: &str) -> Option<ProcEntry> {
    entries
        .iter()
        .filter(|e| e.name == name && e.kind == "skcipher")
        .max_by_key(|e| e.priority)
        .cloned()
}

pub fn driver_for(name: &str) -> Option<ProcEntry> {
    let text = fs::read_to_string("/proc/crypto").ok()?;
    best(&parse(&text), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_highest_priority_skcipher() {
        let text = "name         : xts(aes)\ndriver       : xts(ecb(aes-generic))\nmodule       : kernel\npriority     : 100\ntype         : skcipher\n\n\
name         : xts(aes)\ndriver       : xts-aes-aesni\nmodule       : aesni_intel\npriority     : 401\ntype         : skcipher\nselftest     : passed\n\n\
name         : aes\ndriver       : aes-generic\npriority     : 100\ntype         : cipher\n";
        let e = parse(text);
        assert_eq!(e.len(), 3);
        let b = best(&e, "xts(aes)").unwrap();
        assert_eq!(b.driver, "xts-aes-aesni");
        assert_eq!(b.selftest, "passed");
        assert!(best(&e, "cbc(aes)").is_none());
    }
}
