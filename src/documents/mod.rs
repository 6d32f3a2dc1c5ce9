//! D1–D9: documents exchanged between the firm and its clients.

pub mod folder;
