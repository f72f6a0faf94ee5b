//! Turning the config's match rules into kernel rules, tagging processes that predate the
//! daemon, and describing the tagged processes.
pub mod adopt;
pub mod listing;
pub mod rules;
