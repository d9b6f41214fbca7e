"""Study (issue 17, development cases only; not adopted): can a *budgeted* patch search tell a planted
stamp's target from natural classes where Neural Cleanse's flag misses it (large stamps: ring8, square9)?

    PYTHONPATH=$PWD .venv/bin/python benchmarks/study_budget_patch.py --items dev2:7:0,dev2:8:0,dev2:18:0,dev2:19:1 \
        --out /tmp/budget.jsonl [--ks 4,6] [--steps 80] [--rows 64]

For each class ``c`` and each of 9 localized starts (3x3 windows at the corners, edge middles and centre
of the 8x8 image), a mask ``m = σ(θ_m)`` and pattern ``p = σ(θ_p)`` are optimised by Adam (lr 0.1) on
``CE(f((1 − m)·x + m·p), c) + 0.5·relu(|m|₁ − k)`` over the repair rows not predicted ``c``; then the
mask's ``k`` largest pixels with the pattern rounded to {0, 1} are stamped, and the class's statistic is
the best start's attack rate. A planted target should reach a high rate with ``k`` pixels where natural
classes do not. ``--items`` are ``set:case:fold`` of ``benchmarks/backdoor_protocol.py`` (dev or dev2 only).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import backdoor_protocol as bp
from benchmarks.bench_backdoor_protocol import trained_model


def windows(h=8, w=8, s=3):
    """Top-left corners of the 9 localized starts: 3x3 windows at the corners, edge middles and centre."""
    pos = [0, (h - s) // 2, h - s]
    return [(r, c) for r in pos for c in pos]



def budget_search(model, x, ks=(4, 6), steps=80, lr=0.1, C=10, lam=0.5, seed=0):
    """Per budget k: each class's best attack rate of a binarized k-pixel stamp (the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        pred = model(x).argmax(1)
    starts = windows()
    S = len(starts)
    T, N = C * S, len(x)
    out = {}
    for k in ks:
        tm = torch.full((T, 1, 8, 8), -3.0)
        for t in range(T):
            r, c = starts[t % S]
            tm[t, :, r : r + 3, c : c + 3] = 1.0
        tp = torch.randn((T, 1, 8, 8), generator=g)
        tm.requires_grad_()
        tp.requires_grad_()
        opt = torch.optim.Adam([tm, tp], lr=lr)
        cls = torch.arange(C).repeat_interleave(S)
        valid = (pred[None, :] != cls[:, None]).float()  # [T, N]
        for _ in range(steps):
            m, p = torch.sigmoid(tm), torch.sigmoid(tp)
            xs = ((1 - m[:, None]) * x[None] + (m * p)[:, None]).reshape(T * N, 1, 8, 8)
            logits = model(xs)
            ce = F.cross_entropy(logits, cls.repeat_interleave(N), reduction="none").reshape(T, N)
            ce = (ce * valid).sum(1) / valid.sum(1)
            over = F.relu(m.flatten(1).sum(1) - k)
            loss = (ce + lam * over).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            m, p = torch.sigmoid(tm), torch.sigmoid(tp)
            flat = m.flatten(1)
            idx = flat.topk(k, dim=1).indices
            mb = torch.zeros_like(flat).scatter_(1, idx, 1.0).reshape(m.shape)
            pb = (p > 0.5).float()
            xs = ((1 - mb[:, None]) * x[None] + (mb * pb)[:, None]).reshape(T * N, 1, 8, 8)
            hit = (model(xs).argmax(1).reshape(T, N) == cls[:, None]).float()
            rate = (hit * valid).sum(1) / valid.sum(1)
            out[k] = rate.reshape(C, S).max(1).values.tolist()
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", required=True)  # set:caseidx:fold,...
    ap.add_argument("--out", required=True)
    ap.add_argument("--ks", default="4,6", help="pixel budgets")
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--rows", type=int, default=64, help="repair rows used (the first of the 10%% set)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    digits = bp.load_all_digits()
    sets = {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}  # never the test set
    for item in a.items.split(","):
        s, ci, fo = item.split(":")
        case, fo = sets[s][int(ci)], int(fo)
        data = bp.fold_data(case, fo, digits)
        model = trained_model(case, fo, data)
        model.requires_grad_(False)
        rows = bp.repair_rows(data, bp.REPAIR_FRACTION)
        x = data.x_clean[rows][: a.rows]
        t0 = time.time()
        res = budget_search(model, x, ks=tuple(int(k) for k in a.ks.split(",")), steps=a.steps)
        trig, asr = case.trigger(), None
        if trig is not None:
            with torch.no_grad():
                keep = data.y_eval != trig.target
                asr = float((model(trig.apply(data.x_eval[keep])).argmax(1) == trig.target).float().mean())
        rec = {"set": s, "case": int(ci), "seed": case.seed, "fold": fo, "family": case.family, "target": case.target,
               "asr": asr, "rates": res, "sec": round(time.time() - t0, 1)}
        with open(a.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(item, case.name, asr, {k: [round(v, 2) for v in r] for k, r in res.items()}, rec["sec"], flush=True)
