"""Benchmark — text with masked diffusion vs an autoregressive transformer of the same size.

Loads (or trains once, cold) the chapter-15 models for three seeds, then measures on the toy
grammar: validity vs number of unmasking steps (random and confidence order), bits per token
(masked bound, AR exact, the language's true entropy), diversity and novelty, infilling validity,
samples per second, and each model's cold training CPU-seconds. Goals (issue #17): masked diffusion
≥ 95% valid at its best step count; infilling validity reported; the bits-per-token gap to AR
measured.

    .venv/bin/python benchmarks/text.py            # writes benchmarks/text.md
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import platform
import time

import torch

from diffusion_lite.text import language, measures, zoo

GOAL_VALID = 0.95


def fmt(e) -> str:
    return f"{e.value:.3f} [{e.low:.3f}, {e.high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000, help="sentences per model seed and setting")
    parser.add_argument("--out", default=str(pathlib.Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    load_before = os.getloadavg()[0]

    seeds = list(range(args.seeds))
    nets = {kind: [zoo.load(kind, s, verbose=True) for s in seeds] for kind in zoo.KINDS}
    grammar = language.Grammar()
    tok = grammar.tokenizer()
    splits = zoo.config_for("masked").splits()
    L, mask_id = grammar.max_length, tok.vocab_size
    H = grammar.entropy_bits() / L

    steps = (1, 2, 3, 4, 6, 8, 12)
    sweep = measures.validity_sweep(nets["masked"], nets["autoregressive"], grammar, tok,
                                    splits.train_sentences, n=args.n, steps=steps,
                                    confidence_steps=(2, 4, 6, 12))
    est = {key: {f: measures.over_seeds([r[f] for r in v]) for f in v[0]} for key, v in sweep.items()}
    with torch.no_grad():
        bpt = {"masked (bound)": [measures.bound_bits(n, splits.heldout, mask_id, draws=2 * L,
                                                      generator=torch.Generator().manual_seed(9 + i))
                                  .mean().item() for i, n in enumerate(nets["masked"])],
               "autoregressive (exact)": [measures.exact_bits(n, splits.heldout, mask_id).mean().item()
                                          for n in nets["autoregressive"]]}
    gap = measures.over_seeds([a - b for a, b in zip(*bpt.values())])
    infill = measures.infill_comparison(nets["masked"], nets["autoregressive"], grammar, tok,
                                        n=args.n // 2)

    def per_second(fn, n=1000):
        t0 = time.perf_counter()
        fn(n)
        return n / (time.perf_counter() - t0)

    g = torch.Generator().manual_seed(0)
    speed = {f"masked, k = {k}": per_second(lambda n, k=k: measures.generate(
        nets["masked"][0], tok, n, steps=k, generator=g)) for k in (2, 4, 12)}
    speed["autoregressive (L = 12 steps, no KV cache)"] = per_second(
        lambda n: measures.generate(nets["autoregressive"][0], tok, n, generator=g))

    # The goal is judged on the exact sampler (random order): the confidence order's validity is
    # bought with novelty (see the table), so it is reported next to it, not used to meet the goal.
    best_key = max((k for k in est if k[0] == "masked" and k[2] == "random"),
                   key=lambda k: est[k]["validity"].value)
    best = est[best_key]["validity"]
    conf = est[("masked", L, "confidence")]
    met = best.value >= GOAL_VALID
    robust = best.low >= GOAL_VALID
    train_cpu = {kind: [n.pretrained_info.get("train_cpu_s", math.nan) for n in nets[kind]]
                 for kind in zoo.KINDS}
    lines = [
        "# Benchmark — text: masked diffusion vs autoregression (chapter 15)",
        "",
        f"Toy grammar with agreement (`text.language.Grammar()`), L = {L} positions, vocabulary "
        f"{tok.vocab_size} + [M]; true entropy {grammar.entropy_bits():.3f} bits/sentence = "
        f"{H:.4f} bits/token. Corpus {len(splits.train)} sentences, held-out {len(splits.heldout)}. "
        f"Both models: `TokenTransformer` width 64, 2 blocks, 4 heads "
        f"({sum(p.numel() for p in nets['masked'][0].parameters())} parameters each); masked "
        f"{zoo.default_train('masked').steps} steps, AR {zoo.default_train('autoregressive').steps} "
        f"steps, batch 128. {len(seeds)} seeds; intervals are 95% Student-t over seeds; "
        f"{args.n} sentences per seed and setting.",
        "",
        "## Goals",
        "",
        f"- Masked diffusion ≥ {GOAL_VALID:.0%} valid at its best step count: "
        f"**{'met' if met and robust else 'met on the mean, not across the seed interval' if met else 'NOT met'}**"
        f" — with the exact (random-order) sampler the best is {fmt(best)} at k = {best_key[1]}"
        + ("" if robust else f" (the interval's lower end is below {GOAL_VALID:.0%})")
        + f". The confidence order reaches {fmt(conf['validity'])} at k = {L}, but only "
        f"{conf['novelty'].value:.1%} of its valid sentences are new (the language: "
        f"{est[('grammar', 0, 'exact')]['novelty'].value:.1%}) and {conf['diversity'].value:.0%} "
        "are distinct: it is not counted towards the goal."
        + ("" if robust else " The models are small and trained for about 37 CPU-s each: all "
           "six cached models must fit the chapter's 150 CPU-s, which leaves no room for the longer "
           "training that would lift the lower end (in prototypes, 1000 steps gave about 92%, 1500 "
           "about 96%)."),
        f"- Infilling validity reported: masked (k = gap) {fmt(measures.over_seeds(infill['masked, k = gap']))}, "
        f"AR from the prefix only {fmt(measures.over_seeds(infill['AR, prefix only']))}.",
        f"- Bits-per-token gap measured: masked bound − AR exact = {fmt(gap)} bits/token "
        f"(AR leads).",
        "",
        "## Validity, diversity, novelty",
        "",
        "| model | steps k | order | valid | distinct share | novel share (of valid) | agreement share of errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in sorted(est, key=lambda k: (k[0] != "grammar", k[0], k[2], k[1])):
        e = est[key]
        lines.append(f"| {key[0]} | {key[1] or '—'} | {key[2]} | {fmt(e['validity'])} | "
                     f"{fmt(e['diversity'])} | {fmt(e['novelty'])} | "
                     f"{fmt(e['agreement_share_of_errors'])} |")
    lines += [
        "",
        "The `grammar` row is the language itself (fresh sentences): a perfect model's scores.",
        "",
        "## Bits per token on the held-out sample",
        "",
        "| quantity | bits/token (95% interval over seeds) | per seed |",
        "|---|---|---|",
    ]
    for name, v in bpt.items():
        lines.append(f"| {name} | {fmt(measures.over_seeds(v))} | {', '.join(f'{x:.4f}' for x in v)} |")
    truth = -sum(grammar.log_prob(s) for s in tok.decode(splits.heldout)) / (
        len(splits.heldout) * L * math.log(2))
    lines += [f"| true p on the same sentences | {truth:.4f} | — |",
              f"| entropy of the language | {H:.4f} | — |",
              "", "## Infilling (first 2 and last 3 words given, the middle masked)", "",
              "| method | valid |", "|---|---|"]
    for name, v in infill.items():
        lines.append(f"| {name} | {fmt(measures.over_seeds(v))} |")
    lines += ["", "## Speed and cost", "", "| sampler | sentences per second (1 thread, batch 1000) |",
              "|---|---|"]
    for name, r in speed.items():
        lines.append(f"| {name} | {r:.0f} |")
    load_after = os.getloadavg()[0]
    lines += [
        "",
        "Cold training CPU-seconds per seed (from the cache metadata; measured when each model was "
        "first trained): " + "; ".join(f"{k}: {', '.join(f'{c:.1f}' for c in v)}"
                                       for k, v in train_cpu.items())
        + f" — total {sum(sum(v) for v in train_cpu.values()):.0f} CPU-s (budget 150).",
        "",
        f"This run: {time.process_time() - cpu0:.0f} CPU-s, {time.perf_counter() - wall0:.0f} s wall, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, 1 torch thread; 1-minute load average {load_before:.1f} before, "
        f"{load_after:.1f} after (a shared machine: wall times and speeds are pessimistic).",
    ]
    pathlib.Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
