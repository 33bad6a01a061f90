//! Typed access to GGUF metadata, with errors that name the key.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;

use crate::error::{Error, Result};

/// GGUF metadata as read by candle.
pub type Metadata = HashMap<String, Value>;

pub fn get<'a>(md: &'a Metadata, key: &str) -> Result<&'a Value> {
    md.get(key)
        .ok_or_else(|| Error::metadata(key, "missing from the file"))
}

pub fn string(md: &Metadata, key: &str) -> Result<String> {
    get(md, key)?
        .to_string()
        .cloned()
        .map_err(|e| Error::metadata(key, e.to_string()))
}

pub fn opt_string(md: &Metadata, key: &str) -> Result<Option<String>> {
    md.get(key)
        .map(|v| {
            v.to_string()
                .cloned()
                .map_err(|e| Error::metadata(key, e.to_string()))
        })
        .transpose()
}

/// Any integer type, as GGUF writers differ in the width they use.
pub fn integer(value: &Value, key: &str) -> Result<u64> {
    let n = match value {
        Value::U8(v) => *v as i128,
        Value::I8(v) => *v as i128,
        Value::U16(v) => *v as i128,
        Value::I16(v) => *v as i128,
        Value::U32(v) => *v as i128,
        Value::I32(v) => *v as i128,
        Value::U64(v) => *v as i128,
        Value::I64(v) => *v as i128,
        other => {
            return Err(Error::metadata(
                key,
                format!("expected an integer, found {:?}", other.value_type()),
            ))
        }
    };
    u64::try_from(n).map_err(|_| Error::metadata(key, format!("negative value {n}")))
}

pub fn usize_value(md: &Metadata, key: &str) -> Result<usize> {
    let n = integer(get(md, key)?, key)?;
    usize::try_from(n).map_err(|_| Error::metadata(key, format!("value {n} too large")))
}

pub fn opt_u32(md: &Metadata, key: &str) -> Result<Option<u32>> {
    md.get(key)
        .map(|v| {
            let n = integer(v, key)?;
            u32::try_from(n).map_err(|_| Error::metadata(key, format!("value {n} too large")))
        })
        .transpose()
}

pub fn float(value: &Value, key: &str) -> Result<f64> {
    match value {
        Value::F32(v) => Ok(*v as f64),
        Value::F64(v) => Ok(*v),
        other => integer(other, key).map(|n| n as f64),
    }
}

pub fn opt_f64(md: &Metadata, key: &str) -> Result<Option<f64>> {
    md.get(key).map(|v| float(v, key)).transpose()
}

pub fn opt_bool(md: &Metadata, key: &str) -> Result<Option<bool>> {
    md.get(key)
        .map(|v| v.to_bool().map_err(|e| Error::metadata(key, e.to_string())))
        .transpose()
}

pub fn array<'a>(md: &'a Metadata, key: &str) -> Result<&'a Vec<Value>> {
    get(md, key)?
        .to_vec()
        .map_err(|e| Error::metadata(key, e.to_string()))
}

pub fn opt_array<'a>(md: &'a Metadata, key: &str) -> Result<Option<&'a Vec<Value>>> {
    md.get(key)
        .map(|v| v.to_vec().map_err(|e| Error::metadata(key, e.to_string())))
        .transpose()
}

/// Reads the header (metadata and tensor index) of a GGUF file, with errors naming the file.
pub fn read_header(
    path: &std::path::Path,
) -> Result<(candle_core::quantized::gguf_file::Content, std::fs::File)> {
    let mut file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).map_err(|e| {
        Error::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    Ok((content, file))
}
