//! `pytorch_model.bin` checkpoints (what most OPUS-MT repositories on the Hub ship): the fixture's
//! weights rewritten in PyTorch's zip format load and decode exactly like its `model.safetensors`,
//! in float32 and q8.

// Test helpers outside #[test] functions unwrap too: a failed setup step is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use oerkit_seq2seq::generate::{generate, GenerateOptions};
use oerkit_seq2seq::marian::{MarianCheckpoint, Precision};

/// Appends a pickle BINUNICODE string.
fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends a pickle BININT.
fn int(out: &mut Vec<u8>, v: usize) {
    out.push(b'J');
    out.extend_from_slice(&(v as i32).to_le_bytes());
}

/// Appends a MARK, the ints, and a TUPLE.
fn int_tuple(out: &mut Vec<u8>, values: &[usize]) {
    out.push(b'(');
    for &v in values {
        int(out, v);
    }
    out.push(b't');
}

/// Writes float32 tensors the way `torch.save(state_dict)` does: a zip holding the pickled dict
/// (`archive/data.pkl`, each tensor a `torch._utils._rebuild_tensor_v2` of a persistent storage
/// id) and one raw little-endian entry per storage (`archive/data/<key>`).
fn write_pytorch_bin(path: &Path, tensors: &[(String, Tensor)]) {
    let mut pickle = vec![0x80, 2, b'}', b'('];
    for (key, (name, t)) in tensors.iter().enumerate() {
        unicode(&mut pickle, name);
        pickle.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        pickle.push(b'(');
        unicode(&mut pickle, "storage");
        pickle.extend_from_slice(b"ctorch\nFloatStorage\n");
        unicode(&mut pickle, &key.to_string());
        unicode(&mut pickle, "cpu");
        int(&mut pickle, t.elem_count());
        pickle.extend_from_slice(b"tQ");
        int(&mut pickle, 0);
        let dims = t.dims().to_vec();
        let strides: Vec<usize> = (0..dims.len())
            .map(|i| dims[i + 1..].iter().product())
            .collect();
        int_tuple(&mut pickle, &dims);
        int_tuple(&mut pickle, &strides);
        pickle.extend_from_slice(&[0x89]);
        pickle.extend_from_slice(b"ccollections\nOrderedDict\n)R");
        pickle.extend_from_slice(b"tR");
    }
    pickle.extend_from_slice(b"u.");
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(&pickle).unwrap();
    for (key, (_, t)) in tensors.iter().enumerate() {
        zip.start_file(format!("archive/data/{key}"), stored)
            .unwrap();
        let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        for v in values {
            zip.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    zip.start_file("archive/version", stored).unwrap();
    zip.write_all(b"3\n").unwrap();
    zip.finish().unwrap();
}

#[test]
fn pytorch_bin_checkpoint_decodes_like_its_safetensors() {
    oerkit_testkit::require_shared();
    let fixture = oerkit_testkit::fixture("marian-tiny-en-es").join("model");
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "model.safetensors" {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let mut tensors: Vec<(String, Tensor)> =
        candle_core::safetensors::load(fixture.join("model.safetensors"), &Device::Cpu)
            .unwrap()
            .into_iter()
            .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    write_pytorch_bin(&dir.path().join("pytorch_model.bin"), &tensors);

    let text = std::fs::read_to_string(
        oerkit_testkit::fixture("marian-tiny-en-es").join("reference/inputs.jsonl"),
    )
    .unwrap();
    let inputs: Vec<String> = text
        .lines()
        .take(12)
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect();
    let opts = GenerateOptions {
        num_beams: 2,
        max_new_tokens: 12,
        ..GenerateOptions::default()
    };
    for precision in [Precision::F32, Precision::Q8] {
        let decode = |dir: &Path| {
            let mut ckpt = MarianCheckpoint::load(dir, precision, &Device::Cpu).unwrap();
            let ids: Vec<Vec<u32>> = inputs
                .iter()
                .map(|t| ckpt.tokenizer.encode(t).unwrap())
                .collect();
            generate(&mut ckpt.model, &ids, &opts, &Device::Cpu)
                .unwrap()
                .into_iter()
                .map(|h| h.tokens)
                .collect::<Vec<_>>()
        };
        assert_eq!(decode(dir.path()), decode(&fixture), "{precision:?}");
    }
}
