//! End-to-end tests of the `oerkit` binary on real data from `../shared`.
//! One module per subcommand; each runs the built binary as a user would.

// Test helpers outside #[test] functions unwrap too: a failed setup step is a failed test.
#![allow(clippy::unwrap_used)]

mod apertium;
mod common;
mod documents;
mod eval;
mod models;
mod review;
mod seq2seq;
mod tag;
mod translate;
