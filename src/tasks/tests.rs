//! Engine logic with a test kind.
