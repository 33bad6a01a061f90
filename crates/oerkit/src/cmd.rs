//! One module per subcommand.
pub mod eval;
pub mod export;
pub mod extract;
pub mod license;
pub mod models;
pub mod pseudo;
pub mod review;
pub mod summarize;
pub mod tag;
pub mod translate;
