//! End-to-end tests: the real `cloud-secrets` binary, run in temporary copies of the projects in
//! `fixtures/`, with whole transcripts snapshotted under `snapshots/`.

mod fault_proxy;
mod support;

mod all_profiles;
mod apply;
mod aws;
mod cloud;
mod commands;
mod compare;
mod conformance;
mod corpus;
mod docs_examples;
mod errors;
mod formats;
mod hostile;
mod import;
mod leaks;
mod messages;
mod plan;
mod platform;
mod save_properties;
mod vault;
