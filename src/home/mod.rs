//! H: the taxpayer's home page, help, and the firm's branding assets.

pub mod routes;
