//! kya's kernel tests: the real daemon, real processes and the real kernel, inside the test VM
//! (`cargo xtask test`). One executable with one module per area, so that the tests share one
//! daemon (see `kya_tests::Daemon::start`) and a filter names an area:
//! `cargo xtask test --kernel 6.12 -- egress`.
mod boot;
mod cgroups;
mod cmdlines;
mod credential_reach;
mod credentials;
mod daemon_cli;
mod demo;
mod deputies;
mod egress;
mod egress_corners;
mod escaping;
mod filesystems;
mod footholds;
mod ghost_agents;
mod grants;
mod inheritance;
mod keyrings;
mod lifecycle;
mod match_rules;
mod metadata;
mod metrics;
mod mounts;
mod reload;
mod resolved;
mod root_facilities;
mod self_protection;
mod terminals;
mod unload;
mod verdict_cache;
mod verified_approvals;
mod watch;
