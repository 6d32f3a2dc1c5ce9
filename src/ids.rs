//! Typed row ids, so that a client's id cannot be passed where a staff member's or
//! a document's is expected. They are internal (URLs carry random public ids) and
//! are stored as SQLite integers.

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(value).map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

row_id!(
    /// A client (a row of `clients`).
    ClientId
);
row_id!(
    /// A staff member (a row of `staff`).
    StaffId
);
row_id!(
    /// A document (a row of `documents`).
    DocumentId
);
row_id!(
    /// A task (a row of `tasks`).
    TaskId
);
