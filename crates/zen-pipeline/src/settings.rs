//! What the pipeline needs per source, and where it comes from.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zen_config_cache::{ConfigCache, LoadError, Loader, Snapshot};
use zen_dedup::DedupConfig;
use zen_filter::{Filter, FilterConfig};

/// The settings of one source (or the global default): its filter and its dedup window.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub filter: Filter,
    pub window: Duration,
}

/// The filter and de-duplication configuration per-source settings are built from, replaced
/// whole when it changes ([`crate::Pipeline::reconfigure`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub filter: FilterConfig,
    pub dedup: DedupConfig,
}

impl Rules {
    /// The scopes whose settings differ between `self` and `new`: `None` for the global one
    /// (every source without settings of its own follows it), else the sources by name.
    fn changed(&self, new: &Rules) -> Vec<Option<String>> {
        if self.filter.global != new.filter.global || self.dedup.window != new.dedup.window {
            return vec![None];
        }
        let sources: std::collections::BTreeSet<&String> = (self.filter.sources.keys())
            .chain(new.filter.sources.keys())
            .chain(self.dedup.source_windows.keys())
            .chain(new.dedup.source_windows.keys())
            .collect();
        sources
            .into_iter()
            .filter(|s| {
                self.filter.sources.get(*s) != new.filter.sources.get(*s)
                    || self.dedup.source_windows.get(*s) != new.dedup.source_windows.get(*s)
            })
            .map(|s| Some(s.clone()))
            .collect()
    }
}

/// Builds [`SourceSettings`] from the [`Rules`] in force: a source has settings of its own when
/// either its filter or its dedup window is named. Compiling the filter is the work a cache
/// saves.
#[derive(Debug)]
pub(crate) struct SettingsLoader {
    rules: arc_swap::ArcSwap<Rules>,
}

impl SettingsLoader {
    fn build(&self, source: Option<&str>) -> Result<SourceSettings, String> {
        let rules = self.rules.load();
        let config = FilterConfig {
            global: rules.filter.global.clone(),
            sources: source
                .and_then(|s| rules.filter.sources.get_key_value(s))
                .map(|(k, v)| (k.clone(), v.clone()))
                .into_iter()
                .collect(),
        };
        let filter = Filter::compile(&config).map_err(|e| e.to_string())?;
        let window = source.map_or(rules.dedup.window, |s| rules.dedup.window_for(s));
        Ok(SourceSettings { filter, window })
    }
}

/// The loader, shared by the cache and whoever replaces the rules.
#[derive(Debug, Clone)]
pub(crate) struct SharedLoader(Arc<SettingsLoader>);

impl Loader<SourceSettings> for SharedLoader {
    fn load_global(&self) -> Result<SourceSettings, String> {
        self.0.build(None)
    }

    fn load_source(&self, source: &str) -> Result<Option<SourceSettings>, String> {
        let rules = self.0.rules.load();
        let own = rules.filter.sources.contains_key(source)
            || rules.dedup.source_windows.contains_key(source);
        drop(rules);
        if own {
            self.0.build(Some(source)).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Settings per source, cached or loaded for every event.
#[derive(Debug, Clone)]
pub(crate) enum Settings {
    Cached(Arc<ConfigCache<SourceSettings>>, SharedLoader),
    Uncached(SharedLoader),
}

impl Settings {
    pub(crate) fn new(rules: Rules, cache: Option<Duration>) -> Self {
        let loader = SharedLoader(Arc::new(SettingsLoader {
            rules: arc_swap::ArcSwap::from_pointee(rules),
        }));
        match cache {
            Some(ttl) => Settings::Cached(
                Arc::new(ConfigCache::new("source_settings", ttl, loader.clone())),
                loader,
            ),
            None => Settings::Uncached(loader),
        }
    }

    fn loader(&self) -> &SharedLoader {
        match self {
            Settings::Cached(_, loader) | Settings::Uncached(loader) => loader,
        }
    }

    /// Puts `rules` in force (once their filters compile) and forgets the cached settings of
    /// the scopes they change, so the next event of each is read with them; the scopes changed.
    /// The dedup's capacity (`max_entries`) is the deduper's, fixed at start.
    pub(crate) fn replace(
        &self,
        mut rules: Rules,
    ) -> Result<Vec<Option<String>>, zen_filter::FilterError> {
        Filter::compile(&rules.filter)?;
        let loader = &self.loader().0;
        let old = loader.rules.load_full();
        rules.dedup.max_entries = old.dedup.max_entries;
        let changed = old.changed(&rules);
        loader.rules.store(Arc::new(rules));
        if let Settings::Cached(cache, _) = self {
            for scope in &changed {
                match scope {
                    None => cache.invalidate_all(),
                    Some(source) => cache.invalidate(Some(source)),
                }
            }
        }
        Ok(changed)
    }

    pub(crate) fn is_cached(&self) -> bool {
        matches!(self, Settings::Cached(..))
    }

    pub(crate) fn get(
        &self,
        source: &str,
        now: Instant,
    ) -> Result<Arc<Snapshot<SourceSettings>>, LoadError> {
        match self {
            Settings::Cached(cache, _) => cache.get(source, now),
            Settings::Uncached(loader) => {
                let value = match loader.load_source(source) {
                    Ok(Some(v)) => Ok(v),
                    Ok(None) => loader.load_global(),
                    Err(e) => Err(e),
                };
                value
                    .map(|value| {
                        Arc::new(Snapshot {
                            version: 0,
                            source: Some(source.to_owned()),
                            value,
                        })
                    })
                    .map_err(|reason| LoadError {
                        scope: format!("source {source}"),
                        reason,
                    })
            }
        }
    }
}
