#!/usr/bin/env python3
"""oerkit's GGUF beam search against Hugging Face transformers on the same weights and prompts.

transformers loads the SmolLM2 GGUF file itself (`gguf_file=`, dequantized to float32), so the fair
oerkit side is its dequantized path (`--dequantize`, float32 weights, no activation quantization).
Both decode the same token-id prompts (chat prompts over OpenStax lines, dumped by the bench bin)
with `num_beams=N, do_sample=False, length_penalty=1.0, early_stopping=False`, the same end tokens,
and the same `max_new_tokens`; this prints, per prompt, whether the token ids agree and where not,
the first differing position.

Measured (transformers 5.24.0, torch 2.15 CPU; oerkit --dequantize at batch 4, i.e. left-padded):
beam 2 and beam 4 on the 8 first OpenStax prompts with 96 new tokens: 8/8 token-identical each
(two beam-2 and one beam-4 hypotheses end with <|im_end|>); beam 4 with 32 new tokens at batch 1: 8/8.

Usage (scratch venv with transformers, torch and gguf; never in the repo):
    cargo build --release -p oerkit-benches --bin gguf_generate
    target/release/gguf_generate --dequantize --beams 4 --batches 1 --segments 8 \
        --max-new-tokens 32 --dump-prompts /tmp/p.json --dump-outputs /tmp/o.json
    python benches/gguf/beam_vs_transformers.py --prompts /tmp/p.json --outputs /tmp/o.json \
        --beams 4 --max-new-tokens 32 [--model PATH.gguf]
"""

import argparse
import json
import os
import pathlib

# The end-of-generation token texts oerkit's tokenizer recognises (crates/oerkit-gguf/src/tokenizer.rs).
EOG_TEXTS = [
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
]


def default_model() -> pathlib.Path:
    cache = os.environ.get("OERKIT_MODELS") or os.path.expanduser("~/.cache/oerkit/models")
    return pathlib.Path(cache) / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=pathlib.Path, default=default_model())
    ap.add_argument("--prompts", required=True, help="token-id prompts (gguf_generate --dump-prompts)")
    ap.add_argument("--outputs", required=True, help="oerkit's generated ids (gguf_generate --dump-outputs)")
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    folder, name = str(args.model.parent), args.model.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    vocab = tokenizer.get_vocab()
    eos = sorted({vocab[t] for t in EOG_TEXTS if t in vocab} | {tokenizer.eos_token_id})
    prompts = json.loads(pathlib.Path(args.prompts).read_text())
    ours = json.loads(pathlib.Path(args.outputs).read_text())
    assert len(prompts) == len(ours), "prompts and outputs differ in count"

    same = 0
    for i, (prompt, mine) in enumerate(zip(prompts, ours)):
        ids = torch.tensor([prompt])
        with torch.no_grad():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                num_beams=args.beams,
                do_sample=False,
                length_penalty=1.0,
                early_stopping=False,
                max_new_tokens=args.max_new_tokens,
                eos_token_id=eos,
                pad_token_id=eos[0],
            )
        theirs = out[0, len(prompt):].tolist()
        # oerkit leaves the end token out; transformers keeps it (then pads).
        cut = next((j for j, t in enumerate(theirs) if t in eos), len(theirs))
        theirs = theirs[:cut]
        if theirs == mine:
            same += 1
            print(f"{i}: same ({len(mine)} tokens)")
        else:
            at = next((j for j, (a, b) in enumerate(zip(theirs, mine)) if a != b), min(len(theirs), len(mine)))
            print(f"{i}: differ at token {at}")
            print(f"   transformers: {tokenizer.decode(theirs)!r}")
            print(f"   oerkit:       {tokenizer.decode(mine)!r}")
    print(f"beam {args.beams}: {same}/{len(prompts)} outputs identical to transformers")


if __name__ == "__main__":
    main()
