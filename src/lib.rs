//! cloud-secrets: plan and apply an application's secrets the way `terraform plan/apply` treats
//! infrastructure.
//!
//! The pipeline runs one way: arguments -> [`config::Config`] -> [`desired::Desired`] and
//! [`remote::Remote`] -> [`plan::plan`] -> [`plan::Plan`] -> render -> confirm -> apply -> report.
//! See ARCHITECTURE.md for the code map and the invariants.

pub mod backend;
pub mod cli;
pub mod color;
pub mod commands;
pub mod compare;
pub mod config;
pub mod credentials;
pub mod desired;
pub mod diagnostics;
pub mod error;
pub mod files;
pub mod interrupt;
pub mod json;
pub mod plan;
pub mod policy;
pub mod project;
pub mod prompt;
pub mod record;
pub mod remote;
pub mod render;
pub mod safety;
pub mod saved;
pub mod secret;
pub mod secrets_file;
pub mod settings;
pub mod sorted;
pub mod sources;
pub mod trust;
pub mod validate;

pub use error::{Error, Result};
