//! [`KeyReport`]: what did not fit when a state dict was loaded (missing, unexpected and
//! mis-shaped keys), and the check of a state dict's keys against a module's.

use std::collections::BTreeSet;

use super::StateDict;
use super::weights::{ExpectedKey, KeyKind};
use crate::{Error, Result};

impl StateDict {
    /// Checks the keys under `prefix` against `expected`: every required key present with its
    /// shape, no key that matches nothing. All problems in one [`Error::StateDict`].
    pub(crate) fn check_keys(&self, prefix: &str, expected: &[ExpectedKey]) -> Result<()> {
        let known: BTreeSet<&str> = expected.iter().map(|k| k.key.as_str()).collect();
        let mut report = KeyReport::default();
        for k in expected {
            match (self.shape(&k.key), k.kind) {
                (None, KeyKind::Param) => report.missing.push(k.key.clone()),
                (Some(found), KeyKind::Param | KeyKind::Tied) if found != k.shape => {
                    report.mismatched.push(ShapeMismatch {
                        key: k.key.clone(),
                        expected: k.shape.clone(),
                        found,
                    })
                }
                _ => {}
            }
        }
        report.unexpected = self
            .keys()
            .filter(|k| k.starts_with(prefix) && !known.contains(k))
            .map(String::from)
            .collect();
        report.into_result(self.source())
    }
}

/// What did not fit when a state dict was loaded: PyTorch's three lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// Keys the module needs that the state dict lacks.
    pub missing: Vec<String>,
    /// Keys under the loaded prefix that match no parameter.
    pub unexpected: Vec<String>,
    /// Keys whose stored shape differs from the parameter's.
    pub mismatched: Vec<ShapeMismatch>,
}

/// A stored tensor whose shape differs from the parameter it should fill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// The key, in the state dict's naming.
    pub key: String,
    /// The parameter's shape.
    pub expected: Vec<usize>,
    /// The shape stored in the state dict.
    pub found: Vec<usize>,
}

impl KeyReport {
    /// `Ok` when nothing is wrong, else the [`Error::StateDict`] for `source`.
    pub(crate) fn into_result(self, source: &str) -> Result<()> {
        if self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty() {
            Ok(())
        } else {
            Err(Error::StateDict {
                source_name: source.to_string(),
                report: self,
            })
        }
    }
}

impl std::fmt::Display for KeyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing key(s) {:?}", self.missing));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected key(s) {:?}", self.unexpected));
        }
        for m in &self.mismatched {
            parts.push(format!(
                "key `{}` has shape {:?}, the module expects {:?}",
                m.key, m.found, m.expected
            ));
        }
        f.write_str(&parts.join("; "))
    }
}
