//! The control socket's contract: the protocol both sides speak and the CLI's client. The
//! daemon's server side is `daemon::control_server`.
pub mod client;
pub mod protocol;
