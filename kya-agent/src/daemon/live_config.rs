//! The config the daemon is enforcing now, replaced as a whole by a reload.
//!
//! Every reader takes the current config once per piece of work (`current`), so one request or
//! one event is handled entirely under one config. Each config carries a generation, bumped by
//! every reload, so work prepared under an older config can be recognised and discarded.
use std::sync::{Arc, PoisonError, RwLock};

use crate::config::Config;

/// The config in force and its generation. Shared as `Arc<LiveConfig>`.
#[derive(Debug)]
pub struct LiveConfig {
    state: RwLock<(u64, Arc<Config>)>,
}

impl LiveConfig {
    /// The config the daemon started with, as generation 0.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            state: RwLock::new((0, Arc::new(config))),
        }
    }

    /// The config in force.
    #[must_use]
    pub fn current(&self) -> Arc<Config> {
        Arc::clone(&self.read().1)
    }

    /// The config in force with its generation.
    #[must_use]
    pub fn snapshot(&self) -> (u64, Arc<Config>) {
        let state = self.read();
        (state.0, Arc::clone(&state.1))
    }

    /// Makes `config` the one in force, as `generation`, which must be the next one. Called by
    /// the reload once the kernel enforces it.
    pub fn replace(&self, generation: u64, config: Arc<Config>) {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        debug_assert_eq!(generation, state.0 + 1, "generations go up by one");
        *state = (generation, config);
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (u64, Arc<Config>)> {
        // The lock guards a plain swap; a panic elsewhere cannot leave it half-written.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(agent: &str) -> Config {
        let text = format!("[[agents]]\nname = \"{agent}\"\nowner = \"alice\"\n");
        Config::from_toml_str(&text, Path::new("kya.toml")).expect("valid config")
    }

    #[test]
    fn a_replacement_is_seen_whole_with_its_generation() {
        let live = LiveConfig::new(config("coder"));
        let (generation, before) = live.snapshot();
        assert_eq!(generation, 0);
        live.replace(1, Arc::new(config("ops")));
        let (generation, after) = live.snapshot();
        assert_eq!(generation, 1);
        assert!(after.agent_by_name("ops").is_some());
        assert!(after.agent_by_name("coder").is_none());
        // Work that began before the reload keeps the config it started with.
        assert!(before.agent_by_name("coder").is_some());
        assert!(live.current().agent_by_name("ops").is_some());
    }
}
