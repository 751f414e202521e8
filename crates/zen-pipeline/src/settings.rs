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

/// Builds [`SourceSettings`] from the filter and dedup configuration: a source has settings of
/// its own when either names it. Compiling the filter is the work a cache saves.
#[derive(Debug, Clone)]
pub struct SettingsLoader {
    pub filter: FilterConfig,
    pub dedup: DedupConfig,
}

impl SettingsLoader {
    fn build(&self, source: Option<&str>) -> Result<SourceSettings, String> {
        let config = FilterConfig {
            global: self.filter.global.clone(),
            sources: source
                .and_then(|s| self.filter.sources.get_key_value(s))
                .map(|(k, v)| (k.clone(), v.clone()))
                .into_iter()
                .collect(),
        };
        let filter = Filter::compile(&config).map_err(|e| e.to_string())?;
        let window = source.map_or(self.dedup.window, |s| self.dedup.window_for(s));
        Ok(SourceSettings { filter, window })
    }
}

impl Loader<SourceSettings> for SettingsLoader {
    fn load_global(&self) -> Result<SourceSettings, String> {
        self.build(None)
    }

    fn load_source(&self, source: &str) -> Result<Option<SourceSettings>, String> {
        let own = self.filter.sources.contains_key(source)
            || self.dedup.source_windows.contains_key(source);
        if own {
            self.build(Some(source)).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Settings per source, cached or loaded for every event.
#[derive(Debug, Clone)]
pub(crate) enum Settings {
    Cached(Arc<ConfigCache<SourceSettings>>),
    Uncached(Arc<SettingsLoader>),
}

impl Settings {
    pub(crate) fn new(loader: SettingsLoader, cache: Option<Duration>) -> Self {
        match cache {
            Some(ttl) => {
                Settings::Cached(Arc::new(ConfigCache::new("source_settings", ttl, loader)))
            }
            None => Settings::Uncached(Arc::new(loader)),
        }
    }

    pub(crate) fn is_cached(&self) -> bool {
        matches!(self, Settings::Cached(_))
    }

    pub(crate) fn get(
        &self,
        source: &str,
        now: Instant,
    ) -> Result<Arc<Snapshot<SourceSettings>>, LoadError> {
        match self {
            Settings::Cached(cache) => cache.get(source, now),
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
