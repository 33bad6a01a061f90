"""How far transformers' own float32 results move on the marian-tiny-en-es fixture when only the
rounding changes (the evidence behind the bounds in crates/oerkit-seq2seq/tests/marian.rs).

For each variant of the same model and weights it prints how many of the fixture's 20 first-step logit
vectors are within 1e-4 (with the worst difference per input: encoder state / step 1 / step 2) and how
many of the 60 greedy outputs equal the fixture's:

  sdpa                  the fixture's own setting
  eager                 transformers' eager attention (scores scaled after q·kᵀ, as oerkit does)
  eager-sdpa-order      eager, softmax in sdpa's order: exp(s - max)·v first, divided by the row sums after
                        (what oerkit does)
  eager-prescaled-q     eager with the queries scaled before q·kᵀ (transformers 4.x order)
  eager-rowwise-linear  eager with each Linear evaluated one row at a time (same MKL, gemv not gemm)
  eager-rounded-linear  eager with correctly rounded Linear layers (float64 product, rounded to float32)
  float64               the whole model in float64

    /tmp/venv-s2s/bin/python benches/seq2seq/marian_rounding_check.py [--fixture DIR] [--no-greedy]
"""

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
import transformers.models.marian.modeling_marian as modeling_marian
from transformers import MarianMTModel
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()
torch.set_num_threads(1)

ORIGINAL_LINEAR = torch.nn.Linear.forward
ORIGINAL_EAGER = modeling_marian.eager_attention_forward


def rowwise_linear(self, x):
    shape = x.shape
    rows = x.reshape(-1, shape[-1])
    out = torch.stack([torch.nn.functional.linear(r, self.weight, self.bias) for r in rows])
    return out.reshape(*shape[:-1], -1)


def rounded_linear(self, x):
    bias = None if self.bias is None else self.bias.double()
    return torch.nn.functional.linear(x.double(), self.weight.double(), bias).float()


def prescaled_eager(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
    return ORIGINAL_EAGER(module, query * scaling, key, value, attention_mask, scaling=1.0, dropout=dropout, **kw)


def sdpa_order_eager(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    unnormalized = torch.exp(scores - scores.amax(-1, keepdim=True))
    out = torch.matmul(unnormalized, value) / unnormalized.sum(-1, keepdim=True)
    return out.transpose(1, 2).contiguous(), None


VARIANTS = {
    "sdpa": ("sdpa", ORIGINAL_LINEAR, ORIGINAL_EAGER, torch.float32),
    "eager": ("eager", ORIGINAL_LINEAR, ORIGINAL_EAGER, torch.float32),
    "eager-sdpa-order": ("eager", ORIGINAL_LINEAR, sdpa_order_eager, torch.float32),
    "eager-prescaled-q": ("eager", ORIGINAL_LINEAR, prescaled_eager, torch.float32),
    "eager-rowwise-linear": ("eager", rowwise_linear, ORIGINAL_EAGER, torch.float32),
    "eager-rounded-linear": ("eager", rounded_linear, ORIGINAL_EAGER, torch.float32),
    "float64": ("eager", ORIGINAL_LINEAR, ORIGINAL_EAGER, torch.float64),
}


def main():
    default = Path(os.environ.get("OERKIT_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixture", type=Path, default=default / "fixtures/marian-tiny-en-es")
    parser.add_argument("--no-greedy", action="store_true", help="skip the 60 greedy generations")
    args = parser.parse_args()
    logits_ref = json.loads((args.fixture / "reference/logits.json").read_text())["rows"]
    greedy_ref = [json.loads(l) for l in (args.fixture / "reference/greedy.jsonl").read_text().splitlines()]
    for name, (attn, linear, eager, dtype) in VARIANTS.items():
        modeling_marian.eager_attention_forward = eager
        torch.nn.Linear.forward = linear
        model = MarianMTModel.from_pretrained(args.fixture / "model", attn_implementation=attn).eval().to(dtype)
        within, worst = 0, []
        for row in logits_ref:
            ids = torch.tensor([row["input_ids"]])
            mask = torch.ones_like(ids)
            with torch.no_grad():
                enc = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state[0].float().numpy()
            cells = ["%.0e" % abs(enc - np.array(row["encoder_last_hidden_state"], dtype=np.float32)).max()]
            for step in row["steps"]:
                dec = torch.tensor([step["decoder_input_ids"]])
                with torch.no_grad():
                    lg = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits[0, -1].float().numpy()
                diff = abs(lg - np.array(step["all_logits"], dtype=np.float32)).max()
                within += diff <= 1e-4
                cells.append("%.0e" % diff)
            worst.append("/".join(cells))
        line = f"{name:22s} logits within 1e-4: {within}/20  [{' '.join(worst)}]"
        if not args.no_greedy:
            differing = []
            for r in greedy_ref:
                ids = torch.tensor([r["input_ids"]])
                with torch.no_grad():
                    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=24,
                                         num_beams=1, do_sample=False)[0].tolist()
                if out != r["sequence"]:
                    differing.append(r["name"])
            line += f"  greedy exact: {60 - len(differing)}/60 {differing}"
        print(line, flush=True)
        modeling_marian.eager_attention_forward = ORIGINAL_EAGER
        torch.nn.Linear.forward = ORIGINAL_LINEAR


if __name__ == "__main__":
    main()
