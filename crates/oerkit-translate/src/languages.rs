//! Language codes to English names, for prompts ("Translate from English to Spanish").

/// The English name of a language code (`es`, `es_419`, `pt-BR`, `spa`); the code itself when unknown.
pub fn language_name(code: &str) -> String {
    let lower = code.to_ascii_lowercase().replace('_', "-");
    let (base, region) = match lower.split_once('-') {
        Some((b, r)) => (b.to_string(), Some(r.to_string())),
        None => (lower.clone(), None),
    };
    let name = match base.as_str() {
        "en" | "eng" => "English",
        "es" | "spa" => "Spanish",
        "fr" | "fra" | "fre" => "French",
        "de" | "deu" | "ger" => "German",
        "pt" | "por" => "Portuguese",
        "it" | "ita" => "Italian",
        "nl" | "nld" => "Dutch",
        "sw" | "swa" | "swh" => "Swahili",
        "ha" | "hau" => "Hausa",
        "yo" | "yor" => "Yoruba",
        "am" | "amh" => "Amharic",
        "ar" | "ara" => "Arabic",
        "zh" | "zho" | "chi" => "Chinese",
        "ja" | "jpn" => "Japanese",
        "ko" | "kor" => "Korean",
        "ru" | "rus" => "Russian",
        "uk" | "ukr" => "Ukrainian",
        "pl" | "pol" => "Polish",
        "hi" | "hin" => "Hindi",
        "id" | "ind" => "Indonesian",
        "tr" | "tur" => "Turkish",
        "vi" | "vie" => "Vietnamese",
        "ca" | "cat" => "Catalan",
        "ro" | "ron" => "Romanian",
        _ => return code.to_string(),
    };
    match (base.as_str(), region.as_deref()) {
        ("pt", Some("br")) => "Brazilian Portuguese".into(),
        ("es", Some("419")) => "Latin American Spanish".into(),
        _ => name.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(language_name("es"), "Spanish");
        assert_eq!(language_name("pt_BR"), "Brazilian Portuguese");
        assert_eq!(language_name("xx"), "xx");
    }
}
