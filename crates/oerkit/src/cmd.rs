//! One module per subcommand.
pub mod eval;
pub mod export;
pub mod models;
pub mod review;
