"""Builds the benchmark model for benches/seq2seq_vs_peers.sh: a RANDOMLY initialised MarianMT with the
real size of an OPUS-MT model (opus-mt-en-de: 6+6 layers, d_model 512, 8 heads, FFN 2048, vocab 58,101,
512 positions, swish, static sinusoidal positions, shared tied embeddings), its tokenizer files, and
CTranslate2 conversions (float32 and int8).

Random weights make the text gibberish; speed and memory do not depend on the values, and every engine is
forced to the same output length. Nothing is written into the repository:

    ~/.cache/oerkit/bench/opus-size-marian/          Hugging Face checkpoint (model.safetensors, *.spm, vocab.json)
    ~/.cache/oerkit/bench/opus-size-marian-ct2-float32/
    ~/.cache/oerkit/bench/opus-size-marian-ct2-int8/

Run in a scratch venv with torch, transformers, sentencepiece, protobuf and ctranslate2:
    python benches/seq2seq/make_model.py [--out DIR] [--fixture DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

VOCAB_SIZE = 58101  # opus-mt-en-de


def main() -> int:
    here = Path(__file__).resolve()
    shared = Path(os.environ.get("OERKIT_SHARED", here.parents[2].parent / "shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache/oerkit/bench/opus-size-marian")
    parser.add_argument("--fixture", type=Path, default=shared / "fixtures/marian-tiny-en-es/model",
                        help="where source.spm/target.spm/vocab.json come from")
    parser.add_argument("--force", action="store_true", help="rebuild even if the output exists")
    args = parser.parse_args()

    out: Path = args.out
    ct2 = {q: out.parent / f"{out.name}-ct2-{q}" for q in ("float32", "int8")}
    if out.joinpath("model.safetensors").exists() and all(d.joinpath("model.bin").exists() for d in ct2.values()) \
            and not args.force:
        print(f"{out} and its CTranslate2 conversions exist (use --force to rebuild)", file=sys.stderr)
        return 0

    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)

    # Tokenizer: the fixture's real SentencePiece models; vocab.json padded to OPUS-MT's size with unused
    # entries, <pad> moved to the last id as in every OPUS-MT vocabulary.
    fixture_vocab = json.loads(args.fixture.joinpath("vocab.json").read_text(encoding="utf-8"))
    vocab = {piece: idx for piece, idx in sorted(fixture_vocab.items(), key=lambda kv: kv[1]) if piece != "<pad>"}
    ordered = sorted(vocab, key=vocab.get)
    vocab = {piece: i for i, piece in enumerate(ordered)}
    filler = 0
    while len(vocab) < VOCAB_SIZE - 1:
        vocab[f"<unused_{filler}>"] = len(vocab)
        filler += 1
    vocab["<pad>"] = VOCAB_SIZE - 1
    pad = VOCAB_SIZE - 1
    out.joinpath("vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    for name in ("source.spm", "target.spm"):
        shutil.copyfile(args.fixture / name, out / name)
    out.joinpath("tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "MarianTokenizer", "source_lang": "en", "target_lang": "de",
        "model_max_length": 512, "separate_vocabs": False,
    }), encoding="utf-8")

    config = MarianConfig(
        vocab_size=VOCAB_SIZE, decoder_vocab_size=VOCAB_SIZE, d_model=512,
        encoder_layers=6, decoder_layers=6, encoder_attention_heads=8, decoder_attention_heads=8,
        encoder_ffn_dim=2048, decoder_ffn_dim=2048, activation_function="swish",
        max_position_embeddings=512, scale_embedding=True, share_encoder_decoder_embeddings=True,
        tie_word_embeddings=True, pad_token_id=pad, eos_token_id=0, bos_token_id=0,
        decoder_start_token_id=pad, forced_eos_token_id=0, init_std=0.02,
        dropout=0.1, attention_dropout=0.0, activation_dropout=0.0,
    )
    model = MarianMTModel(config).eval()
    model.generation_config = GenerationConfig(
        bad_words_ids=[[pad]], bos_token_id=0, decoder_start_token_id=pad, eos_token_id=0,
        forced_eos_token_id=0, max_length=512, num_beams=4, pad_token_id=pad,
    )
    model.save_pretrained(out, safe_serialization=True)
    tokenizer = MarianTokenizer.from_pretrained(out)
    assert len(tokenizer) == VOCAB_SIZE, len(tokenizer)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: {params / 1e6:.1f} M parameters", file=sys.stderr)

    converter = Path(sys.executable).with_name("ct2-transformers-converter")
    for quantization, target in ct2.items():
        subprocess.run([str(converter), "--model", str(out), "--output_dir", str(target),
                        "--quantization", quantization, "--force"], check=True)
        print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
