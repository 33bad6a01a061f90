//! End-to-end tests of the `oerkit` binary on real data from `../shared`.
//! One module per subcommand; each runs the built binary as a user would.

mod common;
mod eval;
mod models;
mod review;
