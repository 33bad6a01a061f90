#!/usr/bin/env python3
"""llama.cpp side of benches/quality_openstax.sh: translate a `lines` file the way `oerkit translate
--format lines` does, with the same GGUF, the same segments, the same rendered prompt and greedy decoding.

Exactly as oerkit (crates/oerkit-translate/src/llm.rs):
  * segments: the units `oerkit extract --format lines` prints (sentences; the caller passes that JSONL);
  * prompt: the `[translate]` template of models/prompts.toml rendered with source/target language names,
    text, context and has_tags, as a system + user conversation, then the GGUF's own chat template
    (tokenizer.chat_template) with add_generation_prompt, rendered as transformers renders it (jinja2,
    trim_blocks, lstrip_blocks) -- the render oerkit's chat-template golden tests check against;
  * tokens: no BOS, special tokens parsed; greedy (temperature 0, top_k 1, no repeat penalty);
  * max new tokens per batch of --batch units: 2 x the longest source (in tokens) + 16, at most 1024;
    stop at "\\n\\n" and at llama.cpp's end-of-generation tokens;
  * the reply cleaned by the same rules as oerkit's clean_reply; a line's translation is its units'
    translations joined by a space (the lines writer joins a line's sentences the same way).

llama.cpp runs with extra buffer types off (the AMX matmul path segfaults on these CPUs), as the
gguf-llm-reference fixture generator does.

Usage: quality_llamacpp.py MODEL.gguf UNITS.jsonl PROMPTS.toml OUT.txt [--threads 2] [--batch 8]
"""
import argparse
import json
import sys
import time
import tomllib

LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}


def disable_extra_bufts():
    import llama_cpp.llama_cpp as C

    orig = C.llama_model_default_params

    def patched():
        p = orig()
        p.use_extra_bufts = False
        return p

    C.llama_model_default_params = patched


def clean_reply(reply: str, source: str) -> str:
    """A port of oerkit_translate::llm::clean_reply."""
    text = reply.strip()
    for label in ("Translation:", "Traducción:", "Translated text:", "Here is the translation:"):
        if text.startswith(label):
            text = text[len(label):].lstrip()
    if "\n\n" not in source and "\n\n" in text:
        text = text[: text.index("\n\n")]
    if "\n" not in source:
        first = next((l.strip() for l in text.splitlines() if l.strip()), None)
        if first is not None:
            text = first

    def quoted(s):
        return len(s) >= 2 and ((s[0] == '"' and s[-1] == '"') or (s[0] == "“" and s[-1] == "”"))

    if quoted(text) and not quoted(source.strip()):
        text = text[1:-1]
    return text


def single_line(text: str) -> str:
    """oerkit_document::formats::lines::single_line."""
    return " ".join(s.strip() for s in text.replace("\r", "\n").split("\n") if s.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("units")
    ap.add_argument("prompts")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--source", default="en")
    ap.add_argument("--target", default="es")
    args = ap.parse_args()

    import jinja2
    import jinja2.sandbox
    from llama_cpp import Llama

    disable_extra_bufts()
    llm = Llama(model_path=args.model, n_ctx=4096, n_batch=512, n_ubatch=512, n_threads=args.threads,
                n_threads_batch=args.threads, seed=0, verbose=False)
    chat_template = llm.metadata["tokenizer.chat_template"]
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    chat = env.from_string(chat_template)
    prompt_env = jinja2.Environment()  # minijinja's defaults: no block trimming
    with open(args.prompts, "rb") as f:
        template = tomllib.load(f)["translate"]

    units = [json.loads(l) for l in open(args.units, encoding="utf-8") if l.strip()]
    source_name = LANGUAGE_NAMES.get(args.source, args.source)
    target_name = LANGUAGE_NAMES.get(args.target, args.target)

    def tokens(text):
        return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    translations = {}
    start = time.perf_counter()
    generated = 0
    for b in range(0, len(units), args.batch):
        batch = units[b : b + args.batch]
        longest = max(len(tokens(u["text"])) for u in batch)
        max_new = min(longest * 2 + 16, 1024)
        for u in batch:
            has_tags = "<g" in u["text"] or "<x" in u["text"]
            vars = dict(source=source_name, target=target_name, text=u["text"], context=u.get("context", ""),
                        has_tags=has_tags)
            messages = [
                {"role": "system", "content": prompt_env.from_string(template["system"]).render(**vars)},
                {"role": "user", "content": prompt_env.from_string(template["user"]).render(**vars)},
            ]
            prompt = chat.render(messages=messages, add_generation_prompt=True)
            ids = tokens(prompt)
            llm.reset()
            out = llm.create_completion(prompt=ids, max_tokens=max_new, temperature=0.0, top_k=1, top_p=1.0,
                                        min_p=0.0, repeat_penalty=1.0, seed=0, stop=["\n\n"])
            generated += out["usage"]["completion_tokens"]
            translations[u["id"]] = single_line(clean_reply(out["choices"][0]["text"], u["text"]))
        print(f"llama.cpp: {min(b + args.batch, len(units))}/{len(units)} units", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start

    # Units are `L<line>#<sentence>`: a line is its sentences' translations, in order.
    lines = {}
    for u in units:
        line = int(u["id"].split("#")[0][1:])
        lines.setdefault(line, []).append(translations[u["id"]])
    last = max(lines) if lines else 0
    with open(args.out, "w", encoding="utf-8") as f:
        for n in range(1, last + 1):
            f.write(" ".join(lines.get(n, [])) + "\n")
    print(json.dumps({"units": len(units), "generated_tokens": generated, "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
