//! Turning the config's match rules into kernel rules, and describing the tagged processes.
pub mod listing;
pub mod rules;
