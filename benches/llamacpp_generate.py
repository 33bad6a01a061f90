"""llama.cpp side of benches/gguf_vs_llamacpp.sh: greedy generation over the same token-id prompts.

Usage: python llamacpp_generate.py MODEL.gguf PROMPTS.json MAX_NEW_TOKENS THREADS [OERKIT_OUTPUTS.json]
PROMPTS.json is the list of token-id lists that `gguf_generate --dump-prompts` writes. Each prompt
is decoded alone (llama.cpp single stream), greedy (argmax of the last logits), stopping on
llama.cpp's end-of-generation set or after MAX_NEW_TOKENS. Prints a row in gguf_generate's table
format (generated tokens/s, segments/s, prompt tokens/s), peak RSS of this Python process, and,
given oerkit's batch-1 outputs (`gguf_generate --dump-outputs`), how many outputs are identical.

llama.cpp runs with its extra buffer types off (`use_extra_bufts = False`), as the fixture
generator in ../shared/fixtures/gguf-llm-reference does: with them on, llama.cpp's AMX matmul
path segfaults on these CPUs, and off is the plain-GGUF-layout path (vec_dot / llamafile sgemm).
"""
import json
import resource
import sys
import time

import numpy as np
import llama_cpp
import llama_cpp.llama_cpp as C
from llama_cpp import Llama


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def disable_extra_bufts():
    original = C.llama_model_default_params

    def patched():
        params = original()
        params.use_extra_bufts = False
        return params

    C.llama_model_default_params = patched


def main():
    path, prompts_path, max_new, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    theirs = None
    if len(sys.argv) > 5:
        with open(sys.argv[5]) as f:
            theirs = json.load(f)
    with open(prompts_path) as f:
        prompts = json.load(f)
    disable_extra_bufts()
    started = time.perf_counter()
    llm = Llama(model_path=path, n_ctx=2048, n_batch=512, n_ubatch=512, n_threads=threads,
                n_threads_batch=threads, seed=0, logits_all=False, verbose=False)
    load_s = time.perf_counter() - started
    vocab = C.llama_model_get_vocab(llm.model)
    n_vocab = llm.n_vocab()

    def last_logits():
        # With logits_all=False llama.cpp computes only the last position's logits, and the
        # binding does not copy them into `llm.scores`: read them from the context.
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))
    generated, prompt_s, outputs = 0, 0.0, []
    cpu_started = cpu_seconds()
    started = time.perf_counter()
    for ids in prompts:
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        prompt_s += time.perf_counter() - t0
        out = []
        while len(out) < max_new:
            token = int(np.argmax(last_logits()))
            if C.llama_vocab_is_eog(vocab, token):
                break
            out.append(token)
            if len(out) < max_new:
                llm.eval([token])
        generated += len(out)
        outputs.append(out)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    label = "llama.cpp 1"
    print(f"{label:>5} | {generated:>10} | {seconds:>8.2f} | {generated / seconds:>12.1f} | "
          f"{len(prompts) / seconds:>10.2f} | {sum(len(p) for p in prompts) / prompt_s:>15.1f} | "
          f"{generated / cpu:>12.1f}")
    print(f"      llama.cpp: llama-cpp-python {llama_cpp.__version__}, {threads} threads, "
          f"load {load_s:.2f} s, peak RSS {rss:.0f} MiB (Python process)")
    if theirs is not None:
        same = sum(1 for a, b in zip(outputs, theirs) if a == b)
        prefix = [next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                  for a, b in zip(outputs, theirs)]
        print(f"      llama.cpp vs oerkit batch 1: {same}/{len(outputs)} outputs identical, "
              f"mean common prefix {sum(prefix) / max(len(prefix), 1):.1f} tokens")


if __name__ == "__main__":
    main()
