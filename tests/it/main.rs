//! Integration tests: the real portal over HTTP, with real mail and a real database.

mod accounts;
mod attack_review;
mod auth_abuse;
mod browser;
mod cli;
mod common;
mod documents;
mod documents_abuse;
mod network;
mod pdf_bombs;
mod platform;
mod search_ranking;
mod security;
mod staff;
