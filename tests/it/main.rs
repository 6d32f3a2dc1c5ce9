//! Integration tests: the real portal over HTTP, with real mail and a real database.
// Test code may unwrap and panic (a failure is what a test reports), and a test
// that tells a whole story may run long.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

mod accounts;
mod attack_review;
mod auth_abuse;
mod browser;
mod cli;
mod common;
mod documents;
mod documents_abuse;
mod mail;
mod network;
mod pdf_bombs;
mod platform;
mod plugins;
mod search_ranking;
mod security;
mod staff;
mod tasks;
mod tasks_plugins;
