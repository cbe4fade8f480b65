//! auditwatch watches the OpenAI organization audit log and raises alerts
//! when something risky happens.
//!
//! # Layout
//!
//! The modules follow the data flow:
//!
//! - [`event`]: the audit log object as rules see it, field paths.
//! - [`rules`]: loading rule files and compiling everything in them once.
//! - [`engine`]: evaluation of ordered batches against threshold and
//!   suppression state that persists across batches; inline tests.
//! - [`replay`]: `rulecheck`'s parallel path over event files.
//! - [`alert`]: what a rule raises.
//! - [`config`]: the config file.
//! - [`time`]: durations and points in time as users write them.
//! - [`cli`]: command-line parsing and output; it only calls into the above.

pub mod alert;
pub mod cli;
pub mod config;
pub mod engine;
pub mod event;
pub mod notify;
pub mod replay;
pub mod rules;
pub mod server;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod tls;
pub mod watch;
