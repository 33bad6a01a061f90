//! SentencePiece `.model` files (`source.spm`, `spiece.model`) read in Rust, and the `tokenizers`
//! pipeline Hugging Face's `SpmConverter` builds from them.
//!
//! The file is a protobuf `ModelProto`; only the fields a unigram tokenizer needs are decoded, with a
//! small hand-written wire-format reader (the message is tiny and stable, a protobuf code generator
//! would add a build step for five fields).

use std::path::Path;

use tokenizers::decoders::metaspace::Metaspace as MetaspaceDecoder;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::precompiled::Precompiled;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::Tokenizer;

use crate::error::{read_file, Result, Seq2SeqError};

/// `SentencePiece.Type` in sentencepiece_model.proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceType {
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    pub kind: PieceType,
}

/// `TrainerSpec.ModelType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    Unigram,
    Bpe,
    Word,
    Char,
}

/// The parts of a SentencePiece model a tokenizer needs.
#[derive(Debug, Clone)]
pub struct SpmModel {
    pub pieces: Vec<Piece>,
    pub model_type: ModelType,
    pub byte_fallback: bool,
    pub unk_id: u32,
    pub bos_id: i32,
    pub eos_id: i32,
    pub pad_id: i32,
    pub precompiled_charsmap: Vec<u8>,
    pub add_dummy_prefix: bool,
    pub remove_extra_whitespaces: bool,
}

impl SpmModel {
    /// Reads and parses a `.model` file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = read_file(path)?;
        Self::parse(&bytes).map_err(|message| {
            Seq2SeqError::invalid(
                path,
                format!("not a SentencePiece model ({message}); expected the protobuf file spm_train writes"),
            )
        })
    }

    /// Parses the protobuf bytes of a `ModelProto`.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut model = SpmModel {
            pieces: Vec::new(),
            model_type: ModelType::Unigram,
            byte_fallback: false,
            unk_id: 0,
            bos_id: 1,
            eos_id: 2,
            pad_id: -1,
            precompiled_charsmap: Vec::new(),
            add_dummy_prefix: true,
            remove_extra_whitespaces: true,
        };
        let mut reader = Wire::new(bytes);
        while let Some((field, value)) = reader.next_field()? {
            match (field, value) {
                (1, Value::Bytes(b)) => model.pieces.push(parse_piece(b)?),
                (2, Value::Bytes(b)) => parse_trainer_spec(b, &mut model)?,
                (3, Value::Bytes(b)) => parse_normalizer_spec(b, &mut model)?,
                _ => {}
            }
        }
        if model.pieces.is_empty() {
            return Err("it has no pieces".into());
        }
        if model.unk_id as usize >= model.pieces.len() {
            return Err(format!(
                "unk_id {} is outside the {} pieces",
                model.unk_id,
                model.pieces.len()
            ));
        }
        Ok(model)
    }

    /// The `tokenizers` pipeline equivalent to SentencePiece encoding of this model, as Hugging Face's
    /// `SpmConverter` builds it: `Precompiled` normaliser from the charsmap, whitespace split +
    /// `Metaspace("▁", prepend always, split)` (SentencePiece's default `add_dummy_prefix` and
    /// `remove_extra_whitespaces`), a `Unigram` model with the pieces' scores, a `Metaspace` decoder.
    /// No special tokens and no post-processor: callers add their own ids (Marian maps pieces through
    /// `vocab.json`, T5 appends `</s>`).
    pub fn to_tokenizer(&self) -> Result<Tokenizer> {
        if self.model_type != ModelType::Unigram {
            return Err(Seq2SeqError::Tokenizer(format!(
                "only unigram SentencePiece models are supported, this one is {:?}",
                self.model_type
            )));
        }
        let vocab: Vec<(String, f64)> = self
            .pieces
            .iter()
            .map(|p| (p.piece.clone(), f64::from(p.score)))
            .collect();
        let unigram = Unigram::from(vocab, Some(self.unk_id as usize), self.byte_fallback)
            .map_err(|e| Seq2SeqError::Tokenizer(format!("unigram model: {e}")))?;
        let mut tokenizer = Tokenizer::new(unigram);
        if !self.precompiled_charsmap.is_empty() {
            let precompiled = Precompiled::from(&self.precompiled_charsmap)
                .map_err(|e| Seq2SeqError::Tokenizer(format!("precompiled_charsmap: {e}")))?;
            tokenizer
                .with_normalizer(Some(precompiled))
                .map_err(|e| Seq2SeqError::Tokenizer(e.to_string()))?;
        }
        let prepend = if self.add_dummy_prefix {
            PrependScheme::Always
        } else {
            PrependScheme::Never
        };
        let metaspace = Metaspace::new('▁', prepend, true);
        if self.remove_extra_whitespaces {
            tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
                WhitespaceSplit.into(),
                metaspace.into(),
            ])));
        } else {
            tokenizer.with_pre_tokenizer(Some(metaspace));
        }
        tokenizer.with_decoder(Some(MetaspaceDecoder::new('▁', prepend, true)));
        Ok(tokenizer)
    }
}

fn parse_piece(bytes: &[u8]) -> std::result::Result<Piece, String> {
    let mut piece = Piece {
        piece: String::new(),
        score: 0.0,
        kind: PieceType::Normal,
    };
    let mut reader = Wire::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => {
                piece.piece = String::from_utf8(b.to_vec())
                    .map_err(|_| "a piece is not valid UTF-8".to_string())?
            }
            (2, Value::Fixed32(bits)) => piece.score = f32::from_bits(bits),
            (3, Value::Varint(v)) => {
                piece.kind = match v {
                    2 => PieceType::Unknown,
                    3 => PieceType::Control,
                    4 => PieceType::UserDefined,
                    5 => PieceType::Unused,
                    6 => PieceType::Byte,
                    _ => PieceType::Normal,
                }
            }
            _ => {}
        }
    }
    Ok(piece)
}

fn parse_trainer_spec(bytes: &[u8], model: &mut SpmModel) -> std::result::Result<(), String> {
    let mut reader = Wire::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        if let Value::Varint(v) = value {
            // int32 fields are sign-extended to 64 bits on the wire.
            let as_i32 = v as i64 as i32;
            match field {
                3 => {
                    model.model_type = match v {
                        2 => ModelType::Bpe,
                        3 => ModelType::Word,
                        4 => ModelType::Char,
                        _ => ModelType::Unigram,
                    }
                }
                35 => model.byte_fallback = v != 0,
                40 => {
                    model.unk_id =
                        u32::try_from(as_i32).map_err(|_| format!("negative unk_id {as_i32}"))?
                }
                41 => model.bos_id = as_i32,
                42 => model.eos_id = as_i32,
                43 => model.pad_id = as_i32,
                _ => {}
            }
        }
    }
    Ok(())
}

fn parse_normalizer_spec(bytes: &[u8], model: &mut SpmModel) -> std::result::Result<(), String> {
    let mut reader = Wire::new(bytes);
    while let Some((field, value)) = reader.next_field()? {
        match (field, value) {
            (2, Value::Bytes(b)) => model.precompiled_charsmap = b.to_vec(),
            (3, Value::Varint(v)) => model.add_dummy_prefix = v != 0,
            (4, Value::Varint(v)) => model.remove_extra_whitespaces = v != 0,
            _ => {}
        }
    }
    Ok(())
}

enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// A protobuf wire-format reader over one message's bytes.
struct Wire<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| format!("truncated varint at byte {}", self.pos))?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint too long at byte {}", self.pos))
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("field of {n} bytes runs past the end at byte {}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn next_field(&mut self) -> std::result::Result<Option<(u64, Value<'a>)>, String> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes(b.try_into().expect("4 bytes taken")))
            }
            other => {
                return Err(format!(
                    "unsupported wire type {other} at byte {}",
                    self.pos
                ))
            }
        };
        Ok(Some((field, value)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_with_a_reason() {
        let err = SpmModel::parse(&[0x0a, 0x05, b'a']).unwrap_err();
        assert!(err.contains("runs past the end"), "{err}");
        assert!(SpmModel::parse(&[]).is_err());
    }

    #[test]
    fn reads_a_minimal_model() {
        // pieces: "<unk>" (type 2, score 0), "▁a" (score -1.5)
        let mut bytes = Vec::new();
        for (name, score, kind) in [("<unk>", 0f32, 2u8), ("▁a", -1.5, 1)] {
            let mut piece = vec![0x0a, name.len() as u8];
            piece.extend_from_slice(name.as_bytes());
            piece.push(0x15);
            piece.extend_from_slice(&score.to_le_bytes());
            piece.extend_from_slice(&[0x18, kind]);
            bytes.push(0x0a);
            bytes.push(piece.len() as u8);
            bytes.extend_from_slice(&piece);
        }
        let model = SpmModel::parse(&bytes).unwrap();
        assert_eq!(model.pieces.len(), 2);
        assert_eq!(model.pieces[0].kind, PieceType::Unknown);
        assert_eq!(model.pieces[1].piece, "▁a");
        assert_eq!(model.pieces[1].score, -1.5);
        let tok = model.to_tokenizer().unwrap();
        let enc = tok.encode("a a", false).unwrap();
        assert_eq!(enc.get_tokens(), ["▁a", "▁a"]);
    }
}
