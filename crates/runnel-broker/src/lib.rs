//! The Runnel broker: a tokio server that speaks the Kafka protocol over partition logs.
//!
//! ```text
//!   server ─▶ connection (one task per socket) ─▶ handlers/<api>.rs ─▶ topics ─▶ partition ─▶ runnel-log
//! ```

mod authorized_operations;
mod broker;
mod cluster_meta;
pub mod config;
mod config_resources;
mod connection;
mod deadline_timer;
mod fetch_session;
mod group_runtime;
mod handlers;
mod internal_topics;
mod log_maintenance;
mod metrics;
mod metrics_http;
mod partition;
mod producer_ids;
mod server;
mod storage;
mod topic_name;
mod topics;
mod txn_runtime;

pub use broker::{Broker, StartError};
pub use metrics_http::serve_while_opening;
pub use server::serve;
