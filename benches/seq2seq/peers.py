"""Times one peer configuration of the seq2seq benchmark and prints ONE JSON line, in the format of the
Rust bench bin `seq2seq_generate`:

    {"engine": ..., "beam": N, "batch": N, "threads": N, "segments": N, "tokens": N, "seconds": S,
     "tokens_per_s": X, "peak_rss_mb": M}

Engines: `hf` (transformers MarianMTModel.generate, PyTorch CPU float32), `ct2` (CTranslate2 Translator on
a converted directory, float32 or int8 by how it was converted). Every output is forced to the same length:
EOS is banned until max_new_tokens tokens were generated (min = max). Inputs are the first --segments
lines of --input, batched in order. Only decoding is timed (model load and tokenisation are not); peak RSS
is the process's ru_maxrss (load included), as the Rust bin reports VmHWM. `cpu_seconds` is the process's
user+system CPU time over the timed span, for a loaded machine. Run each configuration in its
own process (benches/seq2seq_vs_peers.sh does) so that peak memory is per configuration.
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path


def read_segments(path: Path, count: int) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line][:count]


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run_hf(args, segments: list[str]) -> tuple[int, float, float]:
    import torch
    from transformers import MarianMTModel, MarianTokenizer

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    tokenizer = MarianTokenizer.from_pretrained(args.model)
    model = MarianMTModel.from_pretrained(args.model).eval()
    encoded = [tokenizer(batch, return_tensors="pt", padding=True, truncation=True, max_length=512)
               for batch in batches(segments, args.batch)]
    tokens = 0
    cpu_start = process_cpu_seconds()
    start = time.perf_counter()
    with torch.inference_mode():
        for enc in encoded:
            out = model.generate(**enc, num_beams=args.beam, max_new_tokens=args.max_new_tokens,
                                 min_new_tokens=args.max_new_tokens, do_sample=False, early_stopping=False)
            # sequences = start token + generated tokens; with min = max every row has max_new_tokens.
            tokens += (out.shape[1] - 1) * out.shape[0]
    return tokens, time.perf_counter() - start, process_cpu_seconds() - cpu_start


def run_ct2(args, segments: list[str]) -> tuple[int, float, float]:
    import ctranslate2
    from transformers import MarianTokenizer

    # The Hugging Face checkpoint the CT2 directory was converted from holds the tokenizer.
    tokenizer = MarianTokenizer.from_pretrained(args.tokenizer)
    translator = ctranslate2.Translator(str(args.model), device="cpu", compute_type="default",
                                        inter_threads=1, intra_threads=args.threads)
    sources = []
    for segment in segments:
        ids = tokenizer(segment, truncation=True, max_length=512).input_ids
        sources.append(tokenizer.convert_ids_to_tokens(ids))
    tokens = 0
    cpu_start = process_cpu_seconds()
    start = time.perf_counter()
    for batch in batches(sources, args.batch):
        results = translator.translate_batch(
            batch, beam_size=args.beam, max_batch_size=args.batch,
            max_decoding_length=args.max_new_tokens, min_decoding_length=args.max_new_tokens,
            return_end_token=True, length_penalty=1.0, disable_unk=False)
        tokens += sum(len(r.hypotheses[0]) for r in results)
    return tokens, time.perf_counter() - start, process_cpu_seconds() - cpu_start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["hf", "ct2"], required=True)
    parser.add_argument("--name", help="engine label in the output (default: --engine)")
    parser.add_argument("--model", type=Path, required=True, help="HF checkpoint (hf) or CT2 directory (ct2)")
    parser.add_argument("--tokenizer", type=Path, help="ct2: the HF checkpoint with the tokenizer files")
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--segments", type=int, default=200)
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    if args.engine == "ct2" and args.tokenizer is None:
        parser.error("--engine ct2 needs --tokenizer (the HF checkpoint directory)")

    segments = read_segments(args.input, args.segments)
    # cpu_seconds: user+system CPU time of the timed span; on a shared, loaded machine tokens per
    # CPU-second says more than wall time.
    tokens, seconds, cpu_seconds = (run_hf if args.engine == "hf" else run_ct2)(args, segments)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({
        "engine": args.name or args.engine, "beam": args.beam, "batch": args.batch, "threads": args.threads,
        "segments": len(segments), "tokens": tokens, "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1), "cpu_seconds": round(cpu_seconds, 3),
        "tokens_per_cpu_s": round(tokens / cpu_seconds, 1), "peak_rss_mb": round(peak_kb / 1024, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
