"""Inference cost of ConvDelRec against DelRec, where it is and is not different.

    python -m bench.audio_speed --dense out/audio/dense.npz --conv out/audio/conv.npz \
        [--samples 64] [--repeats 5] [--lanes 1 8 16] [--json bench/results/audio_speed.json]

Both IR files must be trained networks of the same shape (same hidden size H, same inputs);
the test samples are the embedded synthetic set's (``model.audio.pack.default_data()``), the
same for both. Four places where inference is timed or counted, each as conv / dense in the
same run:

1. **torch, float** (``model.audio.delrec.DelRecNet`` in eval mode, 2 threads, no autograd):
   time per sample at batch 1 and batch 32, median of ``repeats`` runs over the samples; and one
   training step (train mode, forward and backward) on a batch of the first 64 samples;
2. **integer reference** (``sim.reference.simulate``, event-driven numpy, one sample at a time):
   time per sample, median over the samples;
3. **synaptic operations** (weight reads) per sample from the reference traces: a recurrent
   spike reads H weights in the dense projection and K in the conv one;
4. **hardware cycles** per sample of the generated core (``rtl.cost.step_cycles``, the cycle
   model that equals the simulated core cycle for cycle) at each number of lanes, and the
   recurrent weight memory in bits.

Times are medians; the machine is shared and noisy, so the ratios are the result.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def torch_times(hidden: int, n_in: int, n_out: int, kernel: int, dmax: int, x: np.ndarray,
                repeats: int, threads: int) -> dict:
    """Seconds per sample of the float torch model, dense and conv, batch 1 and batch 32."""
    import torch

    from model.audio.delrec import DelRecNet, ModelConfig

    torch.set_num_threads(threads)
    xt = torch.as_tensor(x, dtype=torch.float32)
    out = {}
    for arch in ("dense", "conv"):
        torch.manual_seed(0)
        model = DelRecNet(ModelConfig(arch=arch, n_in=n_in, hidden=hidden, n_out=n_out,
                                      kernel=kernel, dmax=dmax)).eval()
        row = {}
        with torch.inference_mode():
            for b in (1, 32):
                n = min(len(xt), max(b, 32))
                batches = [xt[i:i + b] for i in range(0, n, b)]
                model(batches[0])  # warm-up
                sec = _median_time(lambda: [model(xb) for xb in batches], repeats)
                row[f"batch{b}"] = sec / n
        # one training step (forward and backward, train mode) on a batch of up to 64
        model.train()
        xb = xt[:64]
        y = torch.arange(len(xb)) % n_out

        def step():
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(xb).logits, y).backward()

        step()  # warm-up
        row["train64"] = _median_time(step, repeats) / len(xb)
        out[arch] = row
    return out


def reference_costs(net, x: np.ndarray, lanes: list[int]) -> dict:
    """Per sample: reference time, weight reads by projection kind, cycles per lane count."""
    from rtl.cost import activity, step_cycles
    from sim.reference import simulate

    secs, reads, rec_reads, cycles = [], [], [], {p: [] for p in lanes}
    rec = [k for k, p in enumerate(net.projections) if p.src == p.dst]
    for xs in x:
        t0 = time.perf_counter()
        tr = simulate(net, xs)
        secs.append(time.perf_counter() - t0)
        total = rec_total = 0
        for k, p in enumerate(net.projections):
            src = xs if p.src == 0 else tr.spikes[p.src]
            events = int(np.count_nonzero(src))
            per = p.weight.shape[0] if p.kind == "conv" else net.layers[p.dst].n
            total += events * per
            if k in rec:
                rec_total += events * per
        reads.append(total)
        rec_reads.append(rec_total)
        act = activity(net, tr, xs, None)
        for lp in lanes:
            cycles[lp].append(int(step_cycles(net, act, lanes=lp).sum()))
    rp = net.projections[rec[0]] if rec else None
    return {"reference_s": statistics.median(secs),
            "weight_reads": statistics.median(reads),
            "recurrent_reads": statistics.median(rec_reads),
            "cycles": {str(lp): statistics.median(c) for lp, c in cycles.items()},
            "recurrent_weight_bits": int(rp.weight.size * rp.w_bits) if rp else 0,
            "weight_bits": int(sum(p.weight.size * p.w_bits for p in net.projections))}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dense", required=True, help="trained DelRec IR (.npz)")
    ap.add_argument("--conv", required=True, help="trained ConvDelRec IR (.npz)")
    ap.add_argument("--samples", type=int, default=64, help="test samples (default 64)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--json", default=None, help="write the results here")
    a = ap.parse_args(argv)

    from model import ir
    from model.audio.train import AudioConfig, load_audio

    nets = {"dense": ir.load(a.dense), "conv": ir.load(a.conv)}
    shapes = {k: [(l.n, getattr(l, "in_bits", None)) for l in n.layers] for k, n in nets.items()}
    if shapes["dense"] != shapes["conv"]:
        raise SystemExit(f"the two networks differ in shape: dense {shapes['dense']}, "
                         f"conv {shapes['conv']}")
    recur = {k: [p for p in n.projections if p.src == p.dst] for k, n in nets.items()}
    if [p.kind for p in recur["dense"]] != ["dense"] or [p.kind for p in recur["conv"]] != ["conv"]:
        raise SystemExit("--dense must hold one dense recurrent projection and --conv one conv")
    net_c = nets["conv"]
    data = load_audio(AudioConfig(data="synthetic", progress=False,
                                  in_bits=net_c.input.in_bits, clip_inputs=False))
    x = data.x_test[:a.samples].numpy().astype(np.int64)
    hidden, n_in, n_out = net_c.layers[1].n, net_c.input.n, net_c.layers[-1].n
    kernel = int(recur["conv"][0].weight.shape[0])
    print(f"{len(x)} test samples of {x.shape[1]} steps; H = {hidden}, K = {kernel}",
          flush=True)

    res = {"machine": platform.platform(), "samples": int(len(x)), "steps": int(x.shape[1]),
           "hidden": hidden, "kernel": kernel}
    res["torch"] = torch_times(hidden, n_in, n_out, kernel, net_c.max_delay, x, a.repeats,
                               a.threads)
    res["integer"] = {k: reference_costs(n, x, a.lanes) for k, n in nets.items()}
    d, c = res["integer"]["dense"], res["integer"]["conv"]
    ratios = {
        "torch batch 1": res["torch"]["dense"]["batch1"] / res["torch"]["conv"]["batch1"],
        "torch batch 32": res["torch"]["dense"]["batch32"] / res["torch"]["conv"]["batch32"],
        "torch training step": res["torch"]["dense"]["train64"] / res["torch"]["conv"]["train64"],
        "integer reference": d["reference_s"] / c["reference_s"],
        "recurrent weight reads": d["recurrent_reads"] / max(c["recurrent_reads"], 1),
        "all weight reads": d["weight_reads"] / max(c["weight_reads"], 1),
        "recurrent weight memory": d["recurrent_weight_bits"] / c["recurrent_weight_bits"],
    }
    for lp in a.lanes:
        ratios[f"hardware cycles, {lp} lanes"] = d["cycles"][str(lp)] / c["cycles"][str(lp)]
    res["dense_over_conv"] = ratios

    rows = [("torch float, batch 1 (ms/sample)", 1e3 * res["torch"]["dense"]["batch1"],
             1e3 * res["torch"]["conv"]["batch1"]),
            ("torch float, batch 32 (ms/sample)", 1e3 * res["torch"]["dense"]["batch32"],
             1e3 * res["torch"]["conv"]["batch32"]),
            (f"torch training step, batch {min(len(x), 64)} (ms/sample)",
             1e3 * res["torch"]["dense"]["train64"], 1e3 * res["torch"]["conv"]["train64"]),
            ("integer reference (ms/sample)", 1e3 * d["reference_s"], 1e3 * c["reference_s"]),
            ("recurrent weight reads / sample", d["recurrent_reads"], c["recurrent_reads"]),
            ("all weight reads / sample", d["weight_reads"], c["weight_reads"]),
            ("recurrent weight memory (bits)", d["recurrent_weight_bits"],
             c["recurrent_weight_bits"])]
    rows += [(f"hardware cycles / sample, {lp} lanes", d["cycles"][str(lp)],
              c["cycles"][str(lp)]) for lp in a.lanes]
    print("| measure | DelRec (dense) | ConvDelRec | dense / conv |")
    print("|---|---|---|---|")
    for name, dv, cv in rows:
        fmt = (lambda v: f"{v:.2f}") if isinstance(dv, float) and dv < 1e4 else (
            lambda v: f"{v:,.0f}")
        print(f"| {name} | {fmt(dv)} | {fmt(cv)} | {dv / cv:.2f}× |")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
