//! The tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`), re-implemented to give
//! exactly llama.cpp's ids.
//!
//! Why our own code instead of the `tokenizers` crate: the golden reference is llama.cpp, whose rules
//! differ from a `tokenizers` pipeline in ways that matter here: special tokens are split out of the
//! text longest-first over the whole string (not leftmost-first), a few tokens are re-typed as
//! CONTROL by name (`</s>` in Qwen, so it parses as one token), SentencePiece vocabularies are merged
//! by score (the GGUF has no merge list; `tokenizers` would need 500k merges derived from the vocab),
//! and SmolLM2 needs a digit split that transformers' GGUF builder lacks. The two algorithms (byte-level
//! BPE by merge rank, SentencePiece BPE by score with byte fallback) are short, so owning them is simpler
//! than bending a general pipeline, and keeps the dependency tree small.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use fancy_regex::Regex;

use crate::error::{Error, Result};
use crate::meta::{self, Metadata};

/// GGUF token types (`tokenizer.ggml.token_type`), as llama.cpp defines them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    fn from_gguf(code: u64) -> Self {
        match code {
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Normal,
        }
    }
}

/// Which algorithm turns a piece of plain text into ids.
#[allow(clippy::large_enum_variant)] // one per tokenizer; boxing buys nothing
enum Algorithm {
    /// GPT-2 style byte-level BPE (`tokenizer.ggml.model = gpt2`).
    ByteLevelBpe {
        /// (left id, right id) -> (merge rank, merged id).
        merges: HashMap<(u32, u32), (u32, u32)>,
        /// Regexes applied in sequence; each splits every piece produced by the previous one.
        pre_tokenizers: Vec<Regex>,
        /// byte -> its printable stand-in character in the vocabulary.
        byte_to_char: [char; 256],
        char_to_byte: HashMap<char, u8>,
        /// id of the token for each single byte (through its stand-in character).
        byte_token: [Option<u32>; 256],
    },
    /// SentencePiece-style BPE driven by token scores (`tokenizer.ggml.model = llama`).
    SentencePiece {
        scores: Vec<f32>,
        byte_token: [Option<u32>; 256],
    },
}

/// A tokenizer built from GGUF metadata.
pub struct Tokenizer {
    algorithm: Algorithm,
    tokens: Vec<String>,
    types: Vec<TokenType>,
    token_to_id: HashMap<String, u32>,
    /// CONTROL, USER_DEFINED and UNKNOWN tokens, longest text first: the order llama.cpp splits them
    /// out of raw text.
    special_by_length: Vec<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    end_of_generation: BTreeSet<u32>,
}

/// Pre-tokenizer regexes by `tokenizer.ggml.pre`, as in llama.cpp's `llama-vocab.cpp`.
const GPT2_SPLIT: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DIGITS_SPLIT: &str = r"\p{N}";

/// Token texts llama.cpp treats as end of generation (and forces to CONTROL), from `llama-vocab.cpp`.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "</s>",
];
/// Fill-in-the-middle tokens llama.cpp also counts as end of generation (first match per role).
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>"];
const FIM_REPO_TEXTS: &[&str] = &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<reponame>"];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// GPT-2's reversible map from bytes to printable characters.
fn gpt2_byte_chars() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next_extra = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next_extra).expect("GPT-2 byte stand-ins are valid chars");
            next_extra += 1;
            c
        };
    }
    table
}

fn compile(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| Error::UnsupportedTokenizer(format!("regex {pattern}: {e}")))
}

impl Tokenizer {
    /// Builds the tokenizer from a GGUF file's metadata.
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        let model = meta::string(md, "tokenizer.ggml.model")?;
        let tokens: Vec<String> = meta::array(md, "tokenizer.ggml.tokens")?
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|e| Error::metadata("tokenizer.ggml.tokens", e.to_string()))
            })
            .collect::<Result<_>>()?;
        let mut types: Vec<TokenType> = match meta::opt_array(md, "tokenizer.ggml.token_type")? {
            Some(values) => values
                .iter()
                .map(|v| meta::integer(v, "tokenizer.ggml.token_type").map(TokenType::from_gguf))
                .collect::<Result<_>>()?,
            None => vec![TokenType::Normal; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(Error::metadata(
                "tokenizer.ggml.token_type",
                format!("{} types for {} tokens", types.len(), tokens.len()),
            ));
        }
        let token_to_id: HashMap<String, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let vocab_len = tokens.len() as u32;
        let checked = |key: &str| -> Result<Option<u32>> {
            match meta::opt_u32(md, key)? {
                Some(id) if id >= vocab_len => Err(Error::metadata(
                    key,
                    format!("id {id} is outside the vocabulary of {vocab_len}"),
                )),
                other => Ok(other),
            }
        };
        let bos = checked("tokenizer.ggml.bos_token_id")?;
        let eos = checked("tokenizer.ggml.eos_token_id")?;
        let eot = checked("tokenizer.ggml.eot_token_id")?;
        let add_bos =
            meta::opt_bool(md, "tokenizer.ggml.add_bos_token")?.unwrap_or(model == "llama");
        let add_eos = meta::opt_bool(md, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);

        // llama.cpp re-types end-of-generation and FIM tokens as CONTROL and collects the EOG set.
        let mut end_of_generation = BTreeSet::new();
        let mut force_control = |id: u32, types: &mut Vec<TokenType>| {
            end_of_generation.insert(id);
            types[id as usize] = TokenType::Control;
        };
        for text in EOG_TEXTS {
            if let Some(&id) = token_to_id.get(*text) {
                force_control(id, &mut types);
            }
        }
        for texts in [FIM_PAD_TEXTS, FIM_REPO_TEXTS, FIM_SEP_TEXTS] {
            if let Some(&id) = texts.iter().find_map(|t| token_to_id.get(*t)) {
                force_control(id, &mut types);
            }
        }
        end_of_generation.extend(eos);
        end_of_generation.extend(eot);

        let mut special_by_length: Vec<u32> = (0..vocab_len)
            .filter(|&id| {
                matches!(
                    types[id as usize],
                    TokenType::Control | TokenType::UserDefined | TokenType::Unknown
                ) && !tokens[id as usize].is_empty()
            })
            .collect();
        special_by_length.sort_by_key(|&id| (std::cmp::Reverse(tokens[id as usize].len()), id));

        let algorithm = match model.as_str() {
            "gpt2" => {
                let pre = meta::opt_string(md, "tokenizer.ggml.pre")?
                    .unwrap_or_else(|| "default".to_string());
                let patterns: &[&str] = match pre.as_str() {
                    "default" | "gpt2" | "gpt-2" => &[GPT2_SPLIT],
                    "smollm" => &[DIGITS_SPLIT, GPT2_SPLIT],
                    "qwen2" | "deepseek-r1-qwen" => &[QWEN2_SPLIT],
                    "llama3" | "llama-bpe" | "smaug-bpe" => &[LLAMA3_SPLIT],
                    other => {
                        return Err(Error::UnsupportedTokenizer(format!(
                            "gpt2 with pre = {other}"
                        )))
                    }
                };
                let pre_tokenizers = patterns.iter().map(|p| compile(p)).collect::<Result<_>>()?;
                let byte_to_char = gpt2_byte_chars();
                let char_to_byte = byte_to_char
                    .iter()
                    .enumerate()
                    .map(|(b, &c)| (c, b as u8))
                    .collect();
                let mut byte_token = [None; 256];
                for (b, slot) in byte_token.iter_mut().enumerate() {
                    *slot = token_to_id.get(&byte_to_char[b].to_string()).copied();
                }
                let merge_values = meta::array(md, "tokenizer.ggml.merges")?;
                let mut merges = HashMap::with_capacity(merge_values.len());
                for (rank, value) in merge_values.iter().enumerate() {
                    let text = value
                        .to_string()
                        .map_err(|e| Error::metadata("tokenizer.ggml.merges", e.to_string()))?;
                    // The separator is the first space not at position 0 (a piece may be a space).
                    let split = text
                        .char_indices()
                        .skip(1)
                        .find(|&(_, c)| c == ' ')
                        .map(|(i, _)| i)
                        .ok_or_else(|| {
                            Error::metadata(
                                "tokenizer.ggml.merges",
                                format!("merge {rank} `{text}` has no space"),
                            )
                        })?;
                    let (left, right) = (&text[..split], &text[split + 1..]);
                    let ids = (
                        token_to_id.get(left),
                        token_to_id.get(right),
                        token_to_id.get(&format!("{left}{right}")),
                    );
                    if let (Some(&l), Some(&r), Some(&m)) = ids {
                        merges.entry((l, r)).or_insert((rank as u32, m));
                    }
                }
                Algorithm::ByteLevelBpe {
                    merges,
                    pre_tokenizers,
                    byte_to_char,
                    char_to_byte,
                    byte_token,
                }
            }
            "llama" => {
                let scores: Vec<f32> = match meta::opt_array(md, "tokenizer.ggml.scores")? {
                    Some(values) => values
                        .iter()
                        .map(|v| meta::float(v, "tokenizer.ggml.scores").map(|f| f as f32))
                        .collect::<Result<_>>()?,
                    None => vec![0.0; tokens.len()],
                };
                if scores.len() != tokens.len() {
                    return Err(Error::metadata(
                        "tokenizer.ggml.scores",
                        format!("{} scores for {} tokens", scores.len(), tokens.len()),
                    ));
                }
                let mut byte_token = [None; 256];
                for (b, slot) in byte_token.iter_mut().enumerate() {
                    *slot = token_to_id.get(&format!("<0x{b:02X}>")).copied();
                }
                Algorithm::SentencePiece { scores, byte_token }
            }
            other => return Err(Error::UnsupportedTokenizer(other.to_string())),
        };

        Ok(Tokenizer {
            algorithm,
            tokens,
            types,
            token_to_id,
            special_by_length,
            bos,
            eos,
            add_bos,
            add_eos,
            end_of_generation,
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The beginning-of-sequence token, if any.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The end-of-sequence token, if any.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// Whether [`Tokenizer::encode`] with `add_special` prepends BOS (`tokenizer.ggml.add_bos_token`).
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// llama.cpp's end-of-generation set: EOS, end-of-turn and FIM tokens.
    pub fn end_of_generation_ids(&self) -> &BTreeSet<u32> {
        &self.end_of_generation
    }

    /// Whether `id` ends generation.
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.contains(&id)
    }

    /// The stored text of a token.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of a token's exact stored text.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    /// The (llama.cpp-adjusted) type of a token.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// The bytes one token stands for (llama.cpp's `token_to_piece`). CONTROL tokens give their text
    /// when `render_special`, else nothing.
    pub fn token_bytes(&self, id: u32, render_special: bool) -> Vec<u8> {
        let Some(text) = self.tokens.get(id as usize) else {
            return Vec::new();
        };
        match self.types[id as usize] {
            TokenType::Control => {
                if render_special {
                    text.as_bytes().to_vec()
                } else {
                    Vec::new()
                }
            }
            TokenType::UserDefined => text.as_bytes().to_vec(),
            TokenType::Unused => Vec::new(),
            kind => match &self.algorithm {
                Algorithm::ByteLevelBpe { char_to_byte, .. } => {
                    // A token outside the byte alphabet (e.g. `[PAD151665]`) is kept as written.
                    let bytes: Option<Vec<u8>> = text
                        .chars()
                        .map(|c| char_to_byte.get(&c).copied())
                        .collect();
                    bytes.unwrap_or_else(|| text.as_bytes().to_vec())
                }
                Algorithm::SentencePiece { .. } => match kind {
                    TokenType::Byte => parse_byte_token(text)
                        .map(|b| vec![b])
                        .unwrap_or_else(|| text.as_bytes().to_vec()),
                    TokenType::Unknown => "\u{2585}".as_bytes().to_vec(),
                    _ => text.replace('\u{2581}', " ").into_bytes(),
                },
            },
        }
    }

    /// Decodes ids to text. With `skip_special`, CONTROL tokens (BOS, turn markers…) are dropped;
    /// otherwise they appear as written. Invalid UTF-8 (a cut multi-byte character) becomes U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            bytes.extend(self.token_bytes(id, !skip_special));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Tokenizes `text` as llama.cpp's `llama_tokenize(text, add_special, parse_special)` does.
    ///
    /// `add_special` adds BOS/EOS where the GGUF asks for them. `parse_special` turns CONTROL token
    /// texts (`<|im_start|>`, `<start_of_turn>`…) into their ids: use it for rendered chat templates,
    /// never for user text, where a literal `<|im_end|>` would otherwise inject a turn break.
    /// USER_DEFINED tokens are always matched whole, as in llama.cpp.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        for fragment in self.split_special(text, parse_special) {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(piece) => self.encode_plain(piece, &mut out),
            }
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// Splits special tokens out of `text`, longest token first over the whole text (llama.cpp's
    /// `tokenizer_st_partition`).
    fn split_special<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut fragments = vec![Fragment::Text(text)];
        if text.is_empty() {
            return Vec::new();
        }
        for &id in &self.special_by_length {
            let kind = self.types[id as usize];
            if !parse_special && matches!(kind, TokenType::Control | TokenType::Unknown) {
                continue;
            }
            let needle = self.tokens[id as usize].as_str();
            if !fragments
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(needle)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                match fragment {
                    Fragment::Text(mut rest) => {
                        while let Some(at) = rest.find(needle) {
                            if at > 0 {
                                next.push(Fragment::Text(&rest[..at]));
                            }
                            next.push(Fragment::Token(id));
                            rest = &rest[at + needle.len()..];
                        }
                        if !rest.is_empty() {
                            next.push(Fragment::Text(rest));
                        }
                    }
                    token => next.push(token),
                }
            }
            fragments = next;
        }
        fragments
    }

    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) {
        match &self.algorithm {
            Algorithm::ByteLevelBpe {
                merges,
                pre_tokenizers,
                byte_to_char,
                byte_token,
                ..
            } => {
                let mut pieces = vec![text];
                for regex in pre_tokenizers {
                    pieces = pieces
                        .into_iter()
                        .flat_map(|piece| split_isolated(regex, piece))
                        .collect();
                }
                for piece in pieces {
                    let mut symbols: Vec<u32> = Vec::with_capacity(piece.len());
                    for &b in piece.as_bytes() {
                        match byte_token[b as usize] {
                            Some(id) => symbols.push(id),
                            None => {
                                tracing::warn!(
                                    "byte {b:#04x} ({}) has no token; dropped",
                                    byte_to_char[b as usize]
                                );
                            }
                        }
                    }
                    bpe_by_rank(&mut symbols, merges);
                    out.extend(symbols);
                }
            }
            Algorithm::SentencePiece { scores, byte_token } => {
                let escaped = text.replace(' ', "\u{2581}");
                self.encode_sentencepiece(&escaped, scores, byte_token, out);
            }
        }
    }

    /// llama.cpp's `llm_tokenizer_spm_session::tokenize`: start from UTF-8 characters, repeatedly
    /// merge the adjacent pair whose concatenation is the highest-scoring vocabulary token, then
    /// emit each symbol as its token, re-splitting along recorded merges or falling back to bytes.
    fn encode_sentencepiece(
        &self,
        text: &str,
        scores: &[f32],
        byte_token: &[Option<u32>; 256],
        out: &mut Vec<u32>,
    ) {
        struct Symbol {
            start: usize,
            len: usize,
            prev: Option<usize>,
            next: Option<usize>,
        }
        #[derive(PartialEq)]
        struct Bigram {
            left: usize,
            right: usize,
            score: f32,
            size: usize,
        }
        impl Eq for Bigram {}
        impl Ord for Bigram {
            fn cmp(&self, other: &Self) -> Ordering {
                self.score
                    .total_cmp(&other.score)
                    .then_with(|| other.left.cmp(&self.left))
            }
        }
        impl PartialOrd for Bigram {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        let mut symbols: Vec<Symbol> = Vec::new();
        for (i, (start, ch)) in text.char_indices().enumerate() {
            symbols.push(Symbol {
                start,
                len: ch.len_utf8(),
                prev: i.checked_sub(1),
                next: Some(i + 1),
            });
        }
        if let Some(last) = symbols.last_mut() {
            last.next = None;
        }
        let mut queue = BinaryHeap::new();
        let try_add = |left: Option<usize>,
                       right: Option<usize>,
                       symbols: &Vec<Symbol>,
                       queue: &mut BinaryHeap<Bigram>| {
            let (Some(left), Some(right)) = (left, right) else {
                return;
            };
            let start = symbols[left].start;
            let end = symbols[right].start + symbols[right].len;
            let piece = &text[start..end];
            if let Some(&id) = self.token_to_id.get(piece) {
                queue.push(Bigram {
                    left,
                    right,
                    score: scores[id as usize],
                    size: piece.len(),
                });
            }
        };
        for i in 1..symbols.len() {
            try_add(Some(i - 1), Some(i), &symbols, &mut queue);
        }
        while let Some(bigram) = queue.pop() {
            let (l, r) = (bigram.left, bigram.right);
            if symbols[l].len == 0
                || symbols[r].len == 0
                || symbols[l].len + symbols[r].len != bigram.size
            {
                continue;
            }
            symbols[l].len += symbols[r].len;
            symbols[r].len = 0;
            symbols[l].next = symbols[r].next;
            if let Some(n) = symbols[r].next {
                symbols[n].prev = Some(l);
            }
            let (prev, next) = (symbols[l].prev, symbols[l].next);
            try_add(prev, Some(l), &symbols, &mut queue);
            try_add(Some(l), next, &symbols, &mut queue);
        }

        // Every merged symbol is a vocabulary token by construction, so llama.cpp's `resegment`
        // reduces to: the symbol's token, else (a lone character outside the vocabulary) its bytes.
        let mut i = if symbols.is_empty() { None } else { Some(0) };
        while let Some(index) = i {
            let s = &symbols[index];
            let piece = &text[s.start..s.start + s.len];
            match self.token_to_id.get(piece) {
                Some(&id) => out.push(id),
                None => out.extend(piece.bytes().filter_map(|b| byte_token[b as usize])),
            }
            i = s.next;
        }
    }
}

/// `<0x4A>` -> 0x4A.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

/// Splits `text` into regex matches and the gaps between them, keeping both (HF `Isolated`).
fn split_isolated<'t>(regex: &Regex, text: &'t str) -> Vec<&'t str> {
    let mut pieces = Vec::new();
    let mut last = 0;
    for found in regex.find_iter(text) {
        let Ok(m) = found else {
            // Backtrack limit: keep the rest whole rather than lose text.
            break;
        };
        if m.start() > last {
            pieces.push(&text[last..m.start()]);
        }
        if m.end() > m.start() {
            pieces.push(m.as_str());
        }
        last = m.end();
    }
    if last < text.len() {
        pieces.push(&text[last..]);
    }
    pieces
}

/// Byte-level BPE: repeatedly merge the adjacent pair with the lowest merge rank (leftmost on ties).
fn bpe_by_rank(symbols: &mut Vec<u32>, merges: &HashMap<(u32, u32), (u32, u32)>) {
    loop {
        let mut best: Option<(u32, usize, u32)> = None;
        for i in 0..symbols.len().saturating_sub(1) {
            if let Some(&(rank, merged)) = merges.get(&(symbols[i], symbols[i + 1])) {
                if best.is_none_or(|(r, _, _)| rank < r) {
                    best = Some((rank, i, merged));
                }
            }
        }
        let Some((_, at, merged)) = best else { return };
        symbols[at] = merged;
        symbols.remove(at + 1);
    }
}
