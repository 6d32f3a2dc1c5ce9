#[path = "it/browser.rs"]
mod browser;
#[path = "it/common.rs"]
#[allow(dead_code)]
mod common;
