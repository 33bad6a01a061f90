//! One file per format. Each implements [`crate::format::Format`].

use crate::format::{Format, FormatKind};

pub mod cnxml;
pub mod h5p;
pub mod html;
pub mod inline_codes;
pub mod lines;
pub mod markdown;
pub mod po;
pub mod text;
pub mod xliff;

/// The implementation of `kind`.
pub fn get(kind: FormatKind) -> &'static dyn Format {
    match kind {
        FormatKind::Markdown => &markdown::Markdown,
        FormatKind::Html => &html::Html,
        FormatKind::Cnxml => &cnxml::Cnxml,
        FormatKind::Po => &po::Po,
        FormatKind::Xliff => &xliff::Xliff,
        FormatKind::H5p => &h5p::H5p,
        FormatKind::Text => &text::Text,
        FormatKind::Lines => &lines::Lines,
    }
}
