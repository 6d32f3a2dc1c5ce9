//! Shared machinery. Nothing here knows about capabilities.

pub mod address;
pub mod audit;
pub mod claims;
pub mod crypto;
pub mod db;
pub mod extract;
pub mod fsutil;
pub mod mail;
pub mod plugins;
pub mod ratelimit;
pub mod render;
pub mod search;
pub mod smtp;
pub mod storage;
pub mod text;
pub mod web;
