//! Decides which events are kept: rule lists, global and per source, and an expression language,
//! compiled once when configuration loads and evaluated per event.
//!
//! Rules, checked in this order (global first, then the event's source): `enabled`,
//! `min_severity`, `severities`, `exclude_namespaces` and `include_namespaces` (globs; events
//! without a namespace are not subject to them), `kinds` (of the resource), `categories`,
//! `event_types`, `exclude_rules`, and last the `expression`, which must hold for the event to be
//! kept — for example:
//!
//! ```text
//! severity >= "high" AND namespace NOT IN ("kube-system", "monitoring")
//!     AND NOT (rule_id STARTS_WITH "Launch Package" OR details.output_fields.proc.name = "apt")
//! ```
//!
//! Every drop says why ([`DropReason`], counted by the pipeline as
//! `zen_watcher_events_filtered_total{source,reason}`). A configuration that does not compile is
//! an error with its place, what was expected and what was found: the caller keeps the previous
//! good [`Filter`]. Evaluation cannot fail, so nothing fails open at run time.
//!
//! Knows nothing about IO, clocks or metrics backends.

mod expr;

use std::collections::{BTreeMap, HashMap};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use zen_model::{Category, Event, Severity};

/// One list of rules, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterRules {
    /// `false` drops every event these rules apply to.
    pub enabled: bool,
    pub min_severity: Option<Severity>,
    /// When not empty, only these severities are kept.
    pub severities: Vec<Severity>,
    /// When not empty, only namespaces matching one of these globs are kept.
    pub include_namespaces: Vec<String>,
    pub exclude_namespaces: Vec<String>,
    /// When not empty, only events about resources of these kinds are kept.
    pub kinds: Vec<String>,
    pub categories: Vec<Category>,
    pub event_types: Vec<String>,
    /// Rule, check or vulnerability ids whose events are dropped.
    pub exclude_rules: Vec<String>,
    /// Must hold for an event to be kept.
    pub expression: Option<String>,
}

impl Default for FilterRules {
    fn default() -> Self {
        FilterRules {
            enabled: true,
            min_severity: None,
            severities: Vec::new(),
            include_namespaces: Vec::new(),
            exclude_namespaces: Vec::new(),
            kinds: Vec::new(),
            categories: Vec::new(),
            event_types: Vec::new(),
            exclude_rules: Vec::new(),
            expression: None,
        }
    }
}

/// Global rules and rules per source name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    pub global: FilterRules,
    pub sources: BTreeMap<String, FilterRules>,
}

/// Why an event was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    Disabled,
    MinSeverity,
    Severity,
    Namespace,
    Kind,
    Category,
    EventType,
    ExcludedRule,
    Expression,
}

impl DropReason {
    pub const ALL: [DropReason; 9] = [
        DropReason::Disabled,
        DropReason::MinSeverity,
        DropReason::Severity,
        DropReason::Namespace,
        DropReason::Kind,
        DropReason::Category,
        DropReason::EventType,
        DropReason::ExcludedRule,
        DropReason::Expression,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Disabled => "disabled",
            DropReason::MinSeverity => "min_severity",
            DropReason::Severity => "severity",
            DropReason::Namespace => "namespace",
            DropReason::Kind => "kind",
            DropReason::Category => "category",
            DropReason::EventType => "event_type",
            DropReason::ExcludedRule => "excluded_rule",
            DropReason::Expression => "expression",
        }
    }
}

/// A filter configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// An expression that does not parse or does not type-check.
    #[error("{at}: expected {expected}, found {found}")]
    Expression {
        at: String,
        expected: String,
        found: String,
    },
    /// Another setting, named by its key.
    #[error("{field}: {problem}")]
    Setting { field: String, problem: String },
    /// An error inside the rules of `scope` (`global` or `sources.<name>`).
    #[error("{scope}.{inner}")]
    In {
        scope: String,
        inner: Box<FilterError>,
    },
}

#[derive(Debug, Clone)]
struct CompiledRules {
    enabled: bool,
    min_severity: Option<Severity>,
    /// Bit per severity rank; all set when not restricted.
    severities: u8,
    include_namespaces: Option<GlobSet>,
    exclude_namespaces: Option<GlobSet>,
    kinds: Vec<String>,
    categories: Vec<Category>,
    event_types: Vec<String>,
    exclude_rules: Vec<String>,
    expression: Option<expr::Node>,
}

fn globs(field: &str, patterns: &[String]) -> Result<Option<GlobSet>, FilterError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        let glob = Glob::new(p).map_err(|e| FilterError::Setting {
            field: format!("{field}[{i}]"),
            problem: format!("expected a glob, found {p:?} ({})", e.kind()),
        })?;
        set.add(glob);
    }
    set.build().map(Some).map_err(|e| FilterError::Setting {
        field: field.to_owned(),
        problem: e.to_string(),
    })
}

impl CompiledRules {
    fn compile(rules: &FilterRules) -> Result<Self, FilterError> {
        let expression = match &rules.expression {
            Some(src) => Some(expr::compile(src).map_err(|e| FilterError::In {
                scope: "expression".to_owned(),
                inner: Box::new(e),
            })?),
            None => None,
        };
        let severities = if rules.severities.is_empty() {
            u8::MAX
        } else {
            rules.severities.iter().fold(0, |m, s| m | (1 << s.rank()))
        };
        Ok(CompiledRules {
            enabled: rules.enabled,
            min_severity: rules.min_severity,
            severities,
            include_namespaces: globs("include_namespaces", &rules.include_namespaces)?,
            exclude_namespaces: globs("exclude_namespaces", &rules.exclude_namespaces)?,
            kinds: rules.kinds.clone(),
            categories: rules.categories.clone(),
            event_types: rules.event_types.clone(),
            exclude_rules: rules.exclude_rules.clone(),
            expression,
        })
    }

    fn check(&self, event: &Event) -> Result<(), DropReason> {
        let drop_if = |cond: bool, reason| if cond { Err(reason) } else { Ok(()) };
        drop_if(!self.enabled, DropReason::Disabled)?;
        drop_if(
            self.min_severity.is_some_and(|min| event.severity < min),
            DropReason::MinSeverity,
        )?;
        drop_if(
            self.severities & (1 << event.severity.rank()) == 0,
            DropReason::Severity,
        )?;
        if let Some(ns) = event.namespace.as_deref() {
            drop_if(
                self.exclude_namespaces
                    .as_ref()
                    .is_some_and(|g| g.is_match(ns)),
                DropReason::Namespace,
            )?;
            drop_if(
                self.include_namespaces
                    .as_ref()
                    .is_some_and(|g| !g.is_match(ns)),
                DropReason::Namespace,
            )?;
        }
        if !self.kinds.is_empty() {
            let kind = event.resource.as_ref().map(|r| r.kind.as_str());
            drop_if(
                !kind.is_some_and(|k| self.kinds.iter().any(|x| x == k)),
                DropReason::Kind,
            )?;
        }
        drop_if(
            !self.categories.is_empty() && !self.categories.contains(&event.category),
            DropReason::Category,
        )?;
        drop_if(
            !self.event_types.is_empty()
                && !self.event_types.iter().any(|t| *t == event.event_type),
            DropReason::EventType,
        )?;
        drop_if(
            event
                .rule_id
                .as_deref()
                .is_some_and(|r| self.exclude_rules.iter().any(|x| x == r)),
            DropReason::ExcludedRule,
        )?;
        if let Some(expression) = &self.expression {
            drop_if(
                !expression.eval(&expr::Subject::new(event)),
                DropReason::Expression,
            )?;
        }
        Ok(())
    }
}

/// A compiled filter configuration.
#[derive(Debug, Clone)]
pub struct Filter {
    global: CompiledRules,
    sources: HashMap<String, CompiledRules>,
}

impl Filter {
    /// Compiles a configuration, or says what is wrong with it and where.
    pub fn compile(config: &FilterConfig) -> Result<Self, FilterError> {
        let scoped = |scope: String| {
            move |e: FilterError| FilterError::In {
                scope: scope.clone(),
                inner: Box::new(e),
            }
        };
        let global = CompiledRules::compile(&config.global).map_err(scoped("global".to_owned()))?;
        let mut sources = HashMap::new();
        for (name, rules) in &config.sources {
            let compiled =
                CompiledRules::compile(rules).map_err(scoped(format!("sources.{name}")))?;
            sources.insert(name.clone(), compiled);
        }
        Ok(Filter { global, sources })
    }

    /// Keeps the event, or says why it is dropped.
    pub fn check(&self, event: &Event) -> Result<(), DropReason> {
        self.global.check(event)?;
        match self.sources.get(event.source.as_ref()) {
            Some(rules) => rules.check(event),
            None => Ok(()),
        }
    }
}

impl Default for Filter {
    /// Keeps everything.
    fn default() -> Self {
        Filter {
            global: CompiledRules::compile(&FilterRules::default())
                .unwrap_or_else(|_| unreachable!("defaults compile")),
            sources: HashMap::new(),
        }
    }
}
