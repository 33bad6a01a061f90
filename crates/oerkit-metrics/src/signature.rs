//! sacrebleu-style reproducibility signatures (`nrefs:1|case:mixed|...|version:2.5.1`).

/// The sacrebleu release whose algorithms this crate reproduces; signatures carry it in
/// `version:` so a score says which reference implementation it is comparable with.
pub const SACREBLEU_VERSION: &str = "2.5.1";

/// An ordered list of signature fields; `version` is always printed last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// (long name, short name, value)
    fields: Vec<(String, String, String)>,
}

impl Signature {
    /// A signature with sacrebleu's global `nrefs` field.
    pub fn new(n_refs: usize) -> Self {
        Signature {
            fields: vec![("nrefs".into(), "#".into(), n_refs.to_string())],
        }
    }

    /// Append a metric-specific field.
    pub fn push(&mut self, long: &str, short: &str, value: &str) {
        self.fields.push((long.into(), short.into(), value.into()));
    }

    /// Add sacrebleu's bootstrap fields (`bs:<n>|rs:<seed>`), placed right after `nrefs`
    /// as sacrebleu orders them.
    pub fn with_bootstrap(mut self, n_samples: usize, seed: u64) -> Self {
        let at = 1.min(self.fields.len());
        self.fields
            .insert(at, ("bs".into(), "bs".into(), n_samples.to_string()));
        self.fields
            .insert(at + 1, ("seed".into(), "rs".into(), seed.to_string()));
        self
    }

    /// `name:value|...|version:2.5.1`; `short` uses sacrebleu's abbreviations.
    pub fn format(&self, short: bool) -> String {
        let mut parts: Vec<String> = self
            .fields
            .iter()
            .map(|(long, abbr, v)| format!("{}:{}", if short { abbr } else { long }, v))
            .collect();
        parts.push(format!(
            "{}:{}",
            if short { "v" } else { "version" },
            SACREBLEU_VERSION
        ));
        parts.join("|")
    }

    /// (long name, value) pairs including `version`, in output order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .fields
            .iter()
            .map(|(l, _, v)| (l.clone(), v.clone()))
            .collect();
        out.push(("version".into(), SACREBLEU_VERSION.into()));
        out
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.format(false))
    }
}
