//! `cipherfs speed`: which cases to measure, from `--alg NAME[:KEYBYTES]`;
//! the measuring is crate::speed's.

use std::time::Duration;

use crate::exitcode::{self, Failure};
use crate::skcipher::{alg, Backend};
use crate::speed;

fn usage(message: impl Into<String>) -> Failure {
    Failure::new(exitcode::USAGE, message)
}

/// "xts(aes):64" as (name, key bytes); the largest key when none is given.
/// A key length the algorithm does not take is refused here, not measured.
pub fn parse_case(s: &str) -> Result<(String, usize), Failure> {
    let (name, key) = match s.rsplit_once(':') {
        Some((n, k)) => (
            n,
            Some(k.parse::<usize>().map_err(|_| {
                usage(format!(
                    "bad key length in {s:?}: give it in bytes, as in xts(aes):64"
                ))
            })?),
        ),
        None => (s, None),
    };
    // An skcipher or an AEAD algorithm.
    let key_sizes = match alg::lookup(name) {
        Ok(info) => info.key_sizes,
        Err(e) => crate::aead::lookup(name)
            .map(|a| a.key_sizes)
            .map_err(|_| usage(format!("{e}; AEAD: gcm(aes)")))?,
    };
    let sizes = key_sizes
        .iter()
        .map(|k| format!("{name}:{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    match key {
        Some(k) if !key_sizes.contains(&k) => Err(usage(format!(
            "{name} takes no {k}-byte key; key lengths are in bytes: {sizes}"
        ))),
        Some(k) => Ok((name.to_string(), k)),
        None => Ok((name.to_string(), *key_sizes.last().unwrap_or(&32))),
    }
}

pub fn run(algs: &[String], backend: &str, size: usize, seconds: f64) -> Result<(), Failure> {
    let cases = if algs.is_empty() {
        speed::DEFAULT_CASES
            .iter()
            .map(|(a, k)| (a.to_string(), *k))
            .collect()
    } else {
        algs.iter()
            .map(|s| parse_case(s))
            .collect::<Result<Vec<_>, _>>()?
    };
    let backends = match backend {
        "soft" => vec![Backend::Soft],
        "afalg" => vec![Backend::Afalg],
        _ => Backend::ALL.to_vec(),
    };
    if !(0.01..=60.0).contains(&seconds) {
        return Err(usage("--seconds must be between 0.01 and 60"));
    }
    speed::run(&speed::Options {
        cases,
        backends,
        size,
        duration: Duration::from_secs_f64(seconds),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_case;

    #[test]
    fn key_lengths_are_bytes_and_checked() {
        assert_eq!(parse_case("xts(aes)").unwrap(), ("xts(aes)".into(), 64));
        assert_eq!(parse_case("xts(aes):32").unwrap(), ("xts(aes)".into(), 32));
        let e = parse_case("xts(aes):7").unwrap_err();
        assert_eq!(e.code, crate::exitcode::USAGE);
        assert!(
            e.message.contains("xts(aes):32, xts(aes):64"),
            "{}",
            e.message
        );
        // Bits where bytes are meant: refused, not measured as "unavailable".
        assert!(parse_case("xts(aes):512").is_err());
        assert!(parse_case("xts(aes):x").is_err());
        assert!(parse_case("rot13").is_err());
        assert_eq!(parse_case("gcm(aes):16").unwrap(), ("gcm(aes)".into(), 16));
        assert!(parse_case("gcm(aes):64").is_err());
    }
}
