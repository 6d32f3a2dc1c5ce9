//! Integration tests: the real portal over HTTP, with real mail and a real database.

mod accounts;
mod browser;
mod cli;
mod common;
mod documents;
mod mail;
mod platform;
mod security;
mod staff;
