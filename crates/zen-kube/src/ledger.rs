//! Which findings each report holds, and what a change of a report adds and takes away: the
//! pure half of a report watcher.

use std::collections::{HashMap, HashSet};

use zen_model::Fingerprint;

/// The findings of the reports of one kind, by report (`<plural>/<namespace>/<name>`).
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    reports: HashMap<String, HashSet<Fingerprint>>,
    /// Findings in all reports: the sum of their sets' sizes, kept as they change (a report
    /// watcher says it after every event, over tens of thousands of reports).
    findings: usize,
    /// Reports listed since the watcher started listing again, while it lists.
    listing: Option<HashSet<String>>,
}

/// What a new version of a report changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Change {
    /// Findings the report did not hold before.
    pub(crate) new: HashSet<Fingerprint>,
    /// Findings it held and no longer does.
    pub(crate) gone: Vec<Fingerprint>,
}

impl Ledger {
    /// The ledger as a store kept it: findings still open, with the report of each.
    pub(crate) fn restore(findings: impl IntoIterator<Item = (String, Fingerprint)>) -> Self {
        let mut ledger = Ledger::default();
        for (report, fp) in findings {
            if ledger.reports.entry(report).or_default().insert(fp) {
                ledger.findings += 1;
            }
        }
        ledger
    }

    /// Reports held.
    pub(crate) fn reports(&self) -> usize {
        self.reports.len()
    }

    /// Findings held, in all reports.
    pub(crate) fn findings(&self) -> usize {
        self.findings
    }

    /// A report as it is now, with the findings it holds.
    pub(crate) fn apply(
        &mut self,
        report: &str,
        findings: impl IntoIterator<Item = Fingerprint>,
    ) -> Change {
        if let Some(listing) = &mut self.listing {
            listing.insert(report.to_owned());
        }
        let now: HashSet<Fingerprint> = findings.into_iter().collect();
        let before = self.reports.remove(report).unwrap_or_default();
        self.findings = self.findings - before.len() + now.len();
        let change = Change {
            new: now.difference(&before).copied().collect(),
            gone: before.difference(&now).copied().collect(),
        };
        if !now.is_empty() {
            self.reports.insert(report.to_owned(), now);
        }
        change
    }

    /// Findings of a report that were not stored after all (dead-lettered): forgotten, so the
    /// report's next version brings them again.
    pub(crate) fn forget(&mut self, report: &str, findings: &[Fingerprint]) {
        if let Some(held) = self.reports.get_mut(report) {
            for fp in findings {
                if held.remove(fp) {
                    self.findings -= 1;
                }
            }
            if held.is_empty() {
                self.reports.remove(report);
            }
        }
    }

    /// A report deleted: every finding it held is gone.
    pub(crate) fn delete(&mut self, report: &str) -> Vec<Fingerprint> {
        let held = self.reports.remove(report).unwrap_or_default();
        self.findings -= held.len();
        held.into_iter().collect()
    }

    /// The watcher lists again (at start, or after its watch fell too far behind).
    pub(crate) fn listing(&mut self) {
        self.listing = Some(HashSet::new());
    }

    /// The list is complete: reports it did not include were deleted meanwhile, and their
    /// findings are gone.
    pub(crate) fn listed(&mut self) -> Vec<Fingerprint> {
        let Some(listed) = self.listing.take() else {
            return Vec::new();
        };
        let missing: Vec<String> = self
            .reports
            .keys()
            .filter(|r| !listed.contains(*r))
            .cloned()
            .collect();
        missing.iter().flat_map(|r| self.delete(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fps(ids: &[u128]) -> Vec<Fingerprint> {
        ids.iter().map(|&i| Fingerprint(i)).collect()
    }

    fn sorted(mut v: Vec<Fingerprint>) -> Vec<Fingerprint> {
        v.sort();
        v
    }

    #[test]
    fn a_new_version_adds_what_is_new_and_takes_away_what_is_gone() {
        let mut l = Ledger::default();
        let c = l.apply("r/ns/a", fps(&[1, 2, 3]));
        assert_eq!(c.new.len(), 3);
        assert!(c.gone.is_empty());
        l.apply("r/ns/b", fps(&[9]));
        let c = l.apply("r/ns/a", fps(&[2, 3, 4, 5]));
        assert_eq!(c.new, fps(&[4, 5]).into_iter().collect());
        assert_eq!(c.gone, fps(&[1]));
        assert_eq!((l.reports(), l.findings()), (2, 5));
        let c = l.apply("r/ns/a", fps(&[2, 3, 4]));
        assert_eq!(c.gone, fps(&[5]));
        let c = l.apply("r/ns/a", fps(&[2, 3, 4]));
        assert_eq!(
            c,
            Change::default(),
            "the same version again changes nothing"
        );
        assert_eq!(sorted(l.delete("r/ns/a")), fps(&[2, 3, 4]));
        assert_eq!((l.reports(), l.findings()), (1, 1));
        l.apply("r/ns/b", fps(&[]));
        assert_eq!((l.reports(), l.findings()), (0, 0));
    }

    #[test]
    fn a_list_that_misses_a_report_resolves_its_findings() {
        let mut l = Ledger::restore([
            ("r/ns/a".to_owned(), Fingerprint(1)),
            ("r/ns/b".to_owned(), Fingerprint(2)),
            ("r/ns/b".to_owned(), Fingerprint(3)),
        ]);
        assert_eq!((l.reports(), l.findings()), (2, 3));
        l.listing();
        // `a` as it was: nothing new; `b` is not listed any more.
        assert_eq!(l.apply("r/ns/a", fps(&[1])), Change::default());
        assert_eq!(sorted(l.listed()), fps(&[2, 3]));
        assert_eq!(l.listed(), Vec::new(), "only once");
        assert_eq!((l.reports(), l.findings()), (1, 1));
    }

    #[test]
    fn forgotten_findings_come_back_as_new() {
        let mut l = Ledger::default();
        l.apply("r/ns/a", fps(&[1, 2]));
        l.forget("r/ns/a", &fps(&[2, 7]));
        assert_eq!(l.findings(), 1, "only what was held is forgotten");
        assert_eq!(
            l.apply("r/ns/a", fps(&[1, 2])).new,
            fps(&[2]).into_iter().collect()
        );
        l.forget("r/ns/a", &fps(&[1, 2]));
        assert_eq!((l.reports(), l.findings()), (0, 0));
    }
}
