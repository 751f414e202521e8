//! Stable 128-bit identities of findings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use xxhash_rust::xxh3::Xxh3;

/// A stable 128-bit hash of the fields that identify a finding.
///
/// Computed with XXH3-128 over a length-prefixed encoding of the identity fields in a fixed order,
/// so it depends neither on key order in the payload nor on anything but those fields, and stays
/// the same across runs, machines and versions. Shown as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub u128);

impl Fingerprint {
    /// Starts a fingerprint for one source format. Every format feeds its identity fields in
    /// its own documented order.
    pub fn builder(source: &str) -> FingerprintBuilder {
        let mut b = FingerprintBuilder(Xxh3::new());
        b.field(source);
        b
    }
}

/// Accumulates identity fields; see [`Fingerprint::builder`].
#[derive(Clone)]
pub struct FingerprintBuilder(Xxh3);

impl fmt::Debug for FingerprintBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintBuilder")
    }
}

impl FingerprintBuilder {
    /// Adds a present field.
    pub fn field(&mut self, value: &str) -> &mut Self {
        self.0.update(&[1]);
        self.0.update(&(value.len() as u64).to_le_bytes());
        self.0.update(value.as_bytes());
        self
    }

    /// Adds a field that may be absent; absent and empty hash differently.
    pub fn opt(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.field(v),
            None => {
                self.0.update(&[0]);
                self
            }
        }
    }

    pub fn finish(&self) -> Fingerprint {
        Fingerprint(self.0.digest128())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The error of reading a fingerprint that is not 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a fingerprint of 32 hex digits, found {0:?}")]
pub struct BadFingerprint(pub String);

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BadFingerprint(s.to_owned()));
        }
        u128::from_str_radix(s, 16)
            .map(Fingerprint)
            .map_err(|_| BadFingerprint(s.to_owned()))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(fields: &[Option<&str>]) -> Fingerprint {
        let mut b = Fingerprint::builder("test");
        for f in fields {
            b.opt(*f);
        }
        b.finish()
    }

    #[test]
    fn is_pinned_so_stored_fingerprints_stay_valid() {
        // If this changes, every stored Observation loses its identity: don't.
        assert_eq!(
            Fingerprint::builder("falco")
                .field("x")
                .finish()
                .to_string(),
            "bd02d2c21a8f2bfee27d038ffac5f4d9"
        );
    }

    #[test]
    fn boundaries_and_absence_are_part_of_the_identity() {
        assert_ne!(fp(&[Some("ab"), Some("c")]), fp(&[Some("a"), Some("bc")]));
        assert_ne!(fp(&[Some("")]), fp(&[None]));
        assert_ne!(fp(&[Some("a"), None]), fp(&[None, Some("a")]));
    }

    #[test]
    fn text_form_round_trips() {
        let f = fp(&[Some("x")]);
        assert_eq!(f.to_string().parse::<Fingerprint>(), Ok(f));
        assert_eq!(
            "00000000000000000000000000000001".parse(),
            Ok(Fingerprint(1))
        );
        assert!("xyz".parse::<Fingerprint>().is_err());
        assert!(
            "+0000000000000000000000000000001"
                .parse::<Fingerprint>()
                .is_err()
        );
    }
}
