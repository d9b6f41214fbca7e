"""Prefix-cache benchmark (issue 20): `unit_effects` inside residual blocks and transformer layers.

    .venv/bin/python benchmarks/bench_prefix.py [--probe 4] [--text-probe 4] [--head-probe 128] [--repeats 3] [--only resnet|bert|llama]

For each (model, layer), side by side in one run:

- ours: `unit_effects` (automatic path: "fx" for the CNN, "hooks" for BERT);
- ours without the read-position cut: the same with `find_read_slices` answering "nothing" (the
  suffix's last modules at every position, as before the cut existed), to measure what the cut saves;
- ours without the linear update: the same with `linear_update.MAX_SHARE` so large that no
  linear layer reading the intervened one is answered by the update (each runs its whole product, as
  before the update existed), to measure what the update saves;
- fallback: `unit_effects(use_suffix=False)` (full forward passes with a hook);
- Captum `LayerFeatureAblation` with one group per unit (a `layer_mask`; heads through
  `attribute_to_layer_input=True` on the attention output projection), `perturbations_per_eval`
  sized to the same rows per pass as our fallback (all units at once would not fit in memory),
  target class 1 for all three (Captum rejects per-sample targets there); the three calls
  interleaved, `--repeats` times, medians;
- per row: one chunk of suffix rows (the cache, one unit zeroed per row, with the read-position
  cut and the linear update where `unit_effects` takes them) against one chunk of
  full forward rows of the same size, interleaved, median of 5 each: the per-row cost of the
  suffix in full forwards, measured so that the machine's load drifts affect both alike.
- peak memory: RSS growth during our call, sampled by a thread, in a fresh process;
- FLOPs: the matrix products and attention of one call of ours, the fallback and Captum, counted by
  `torch.utils.flop_counter.FlopCounterMode` (exact and load-free, unlike the times: the arithmetic
  each path must do, so a time ratio far above the FLOP ratio is overhead, and a target below the
  FLOP ratio cannot be met by running fewer rows faster).

Models (random weights: the cost does not depend on them): the ResNet-18-sized CNN of
`lightning_causal.models.ResNet18` (11.2M parameters, 3x32x32) and a Hugging Face
`BertForSequenceClassification` from a small `BertConfig` (hidden 128, 4 layers, 4 heads,
intermediate 512, vocabulary 1000, 32 tokens with padding; nothing downloaded), and a
`LlamaForSequenceClassification` of the same sizes, whose heads and MLP neurons exist only as the
inputs of ``o_proj`` and ``down_proj`` (``"<module>:input"`` sites; Captum: ``attribute_to_layer_input``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captum.attr import LayerFeatureAblation  # noqa: E402

from benchmarks._timing import peak_rss_growth  # noqa: E402
from lightning_causal.causal import unit_effects  # noqa: E402
from lightning_causal.causal.engine import linear_update  # noqa: E402
from lightning_causal.causal.engine import prefix_cache as prefix_module  # noqa: E402
from lightning_causal.causal.engine.ablation import replace_units  # noqa: E402
from lightning_causal.causal.engine.batching import rows_per_pass  # noqa: E402
from lightning_causal.causal.engine.forward import Forward  # noqa: E402
from lightning_causal.causal.engine.input_sites import input_sites  # noqa: E402
from lightning_causal.causal.engine.prefix_cache import cache_prefix  # noqa: E402
from lightning_causal.causal.engine.read_positions import ReadSlices  # noqa: E402
from lightning_causal.causal.engine.state import audit_mode  # noqa: E402
from lightning_causal.causal.engine.units import resolve_layout  # noqa: E402
from lightning_causal.models import ResNet18  # noqa: E402

CNN_LAYERS = [("layers.4.c1", {}), ("layers.6.c1", {}), ("layers.5", {})]


def _transformer_layers(heads: str, neurons: str) -> list[tuple[str, dict]]:
    """The heads of layers 1-3 and the MLP neurons of layers 1-2 of a 4-layer model (``{}``: the layer index)."""
    return [(heads.format(i), {"num_heads": 4}) for i in (1, 2, 3)] + [(neurons.format(i), {"unit_dim": -1}) for i in (1, 2)]


BERT_LAYERS = _transformer_layers("bert.encoder.layer.{}.attention.self", "bert.encoder.layer.{}.intermediate")


def resnet(probe: int):
    torch.manual_seed(0)
    model = ResNet18().eval()
    x = torch.rand(probe, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    return model, (x,), None


def _tokens(probe: int, pad_id: int | None = None) -> tuple[tuple[torch.Tensor], dict]:
    """``probe`` sequences of 32 token ids (vocabulary 1000), half the probe padded after 24 tokens
    (``pad_id`` written there when given); the attention mask as a keyword forward argument."""
    ids = torch.randint(1, 1000, (probe, 32), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(probe, 32, dtype=torch.long)
    mask[: probe // 2, 24:] = 0
    if pad_id is not None:
        ids[: probe // 2, 24:] = pad_id
    return (ids,), {"attention_mask": mask}


def bert(probe: int):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=512, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config).eval(), *_tokens(probe)


# transformers 5 attention: the heads are o_proj's input; the MLP neurons down_proj's input
LLAMA_LAYERS = _transformer_layers("model.layers.{}.self_attn.o_proj:input", "model.layers.{}.mlp.down_proj:input")


def llama(probe: int):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4,
                         intermediate_size=512, max_position_embeddings=64, num_labels=2, pad_token_id=0)
    return LlamaForSequenceClassification(config).eval(), *_tokens(probe, pad_id=0)  # Llama pools the last non-pad token


MODELS = {"resnet": (resnet, CNN_LAYERS), "bert": (bert, BERT_LAYERS), "llama": (llama, LLAMA_LAYERS)}


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _captum(model, xs, afa, layer, layout, rows, n):
    if layer.endswith(":input"):  # a module's input: Captum's attribute_to_layer_input on that module
        module = model.get_submodule(layer[: -len(":input")])
        width = module.in_features
        size = width // layout["num_heads"] if "num_heads" in layout else 1
        mask, to_input = (torch.arange(width) // size).view(1, 1, width), True
    elif "num_heads" in layout:  # heads: the input of the attention output projection, one group per head
        module = model.get_submodule(layer.replace(".self", ".output.dense"))
        width = module.in_features
        mask = (torch.arange(width) // (width // layout["num_heads"])).view(1, 1, width)
        to_input = True
    else:
        module, h = model.get_submodule(layer), None

        def grab(_m, _i, o):
            nonlocal h
            h = o

        handle = module.register_forward_hook(grab)
        with torch.no_grad():
            Forward(model, additional_forward_args=afa, num_samples=n)(*(x[:1] for x in xs), rows=torch.zeros(1, dtype=torch.long))
        handle.remove()
        units = h.shape[-1] if layout.get("unit_dim") == -1 else h.shape[1]
        shape = [1] * h.dim()
        shape[-1 if layout.get("unit_dim") == -1 else 1] = units
        mask, to_input = torch.arange(units).view(shape), False

    def forward_func(*args):
        out = model(*args[: len(xs)], **({} if afa is None else {"attention_mask": args[len(xs)]}))
        return out.logits if hasattr(out, "logits") else out

    lfa = LayerFeatureAblation(forward_func, module)
    extra = None if afa is None else (afa["attention_mask"],)
    per_eval = max(1, rows // n)
    return lambda: lfa.attribute(xs if len(xs) > 1 else xs[0], target=1, additional_forward_args=extra, layer_mask=mask,
                                 attribute_to_layer_input=to_input, perturbations_per_eval=per_eval)


def per_row(model, xs, afa, layer: str, layout: dict, rows: int) -> float:
    """Median over 5 interleaved repeats of (suffix chunk time) / (full-forward chunk time)."""
    n = xs[0].shape[0]
    forward = Forward(model, additional_forward_args=afa, num_samples=n)
    with audit_mode(model), input_sites(model, [layer]):
        lay = resolve_layout(cache_prefix(model, xs, layer, additional_forward_args=afa).value.shape, layout.get("unit_dim"),
                             layout.get("num_heads"))
        # as unit_effects builds it: one suffix row per unit and sample (the read-position cut from 8 on)
        cache = cache_prefix(model, xs, layer, additional_forward_args=afa, rows_per_sample=lay.num_units)
        s = torch.arange(rows) % n
        u = torch.arange(rows) % lay.num_units

        def zeroed(h):
            return replace_units(h, u, torch.zeros(()), lay.dim, unit_size=lay.unit_size)

        zeroed.changed_units = (u, lay.dim, lay.unit_size)  # as unit_rows says it: the linear update may answer
        ratios = []
        for _ in range(5):
            t_suffix = _seconds(lambda: cache(zeroed, s))
            t_full = _seconds(lambda: forward(*(x[s] for x in xs), rows=s))
            ratios.append(t_suffix / t_full)
    return sorted(ratios)[2]


def time_layer(name: str, probe: int, layer: str, layout: dict, repeats: int) -> dict:
    model, xs, afa = MODELS[name][0](probe)
    n = xs[0].shape[0]
    forward = Forward(model, additional_forward_args=afa, num_samples=n)
    rows = rows_per_pass(model, xs, None, forward=forward)
    unit_effects(model, tuple(x[:2] for x in xs), layer, target=1, **layout,
                 additional_forward_args=None if afa is None else {"attention_mask": afa["attention_mask"][:2]})  # warm-up
    eff, info = unit_effects(model, xs, layer, target=1, additional_forward_args=afa, return_info=True, **layout)
    def uncut():
        find = prefix_module.find_read_slices
        prefix_module.find_read_slices = lambda *_a: ReadSlices([])
        try:
            return unit_effects(model, xs, layer, target=1, additional_forward_args=afa, **layout)
        finally:
            prefix_module.find_read_slices = find

    def plain():
        share = linear_update.MAX_SHARE
        linear_update.MAX_SHARE = 1 << 40
        try:
            return unit_effects(model, xs, layer, target=1, additional_forward_args=afa, **layout)
        finally:
            linear_update.MAX_SHARE = share

    calls = {
        "ours": lambda: unit_effects(model, xs, layer, target=1, additional_forward_args=afa, **layout),
        "uncut": uncut,
        "plain": plain,
        "fallback": lambda: unit_effects(model, xs, layer, target=1, additional_forward_args=afa, use_suffix=False, **layout),
        "captum": _captum(model, xs, afa, layer, layout, rows, n),
    }
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):  # interleaved, so that load drifts reach all three alike
        for k, fn in calls.items():
            times[k].append(_seconds(fn))
    out = {k: statistics.median(v) for k, v in times.items()}
    flops = {k: _flops(calls[k]) for k in ("ours", "fallback", "captum")}
    out.update(flops_fallback=flops["ours"] / flops["fallback"], flops_captum=flops["ours"] / flops["captum"])
    out.update(layer=layer, units=eff.shape[1], rows=eff.numel(), path=info.path + ("+cut" if info.read_positions else "") + ("+update" if info.linear_updates else ""),
               per_row=per_row(model, xs, afa, layer, layout, rows))
    return out


def peak_memory(name: str, probe: int, layer: str, layout: dict) -> float:
    """Peak RSS growth (MiB) during one unit_effects call, sampled every 0.2 ms; fresh process."""
    model, xs, afa = MODELS[name][0](probe)
    with torch.no_grad():
        Forward(model, additional_forward_args=afa, num_samples=xs[0].shape[0])(*xs)
    return peak_rss_growth(lambda: unit_effects(model, xs, layer, target=1, additional_forward_args=afa, **layout))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", type=int, default=4, help="probe samples for the CNN")
    parser.add_argument("--text-probe", type=int, default=4, help="probe sequences for BERT neurons")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--head-probe", type=int, default=128, help="probe sequences for BERT heads (4 units)")
    parser.add_argument("--only", choices=sorted(MODELS))
    parser.add_argument("--memory", nargs=3, metavar=("MODEL", "LAYER", "LAYOUT"))
    args = parser.parse_args()
    probes = {"resnet": args.probe, "bert": args.text_probe, "llama": args.text_probe}

    def probe_of(name: str, layout: dict) -> int:
        return args.head_probe if "num_heads" in layout else probes[name]

    if args.memory:
        name, layer, layout = args.memory
        print(json.dumps(peak_memory(name, probe_of(name, json.loads(layout)), layer, json.loads(layout))))
        return
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, probes {probes}, heads {args.head_probe}\n")
    print("| model | layer | units | rows U·N | path | ours (s) | without cut (s) | without update (s) | fallback (s) "
          "| Captum LFA (s) | ours/fallback | ours/Captum | without cut/fallback | without update/fallback "
          "| suffix row / forward row | FLOPs ours/fallback | FLOPs ours/Captum | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, (_, layers) in MODELS.items():
        if args.only and name != args.only:
            continue
        for layer, layout in layers:
            r = time_layer(name, probe_of(name, layout), layer, layout, args.repeats)
            cmd = [sys.executable, __file__, "--memory", name, layer, json.dumps(layout), "--probe", str(args.probe),
                   "--text-probe", str(args.text_probe), "--head-probe", str(args.head_probe)]
            mem = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip())
            print(f"| {name} | {layer} {layout or ''} | {r['units']} | {r['rows']} | {r['path']} | {r['ours']:.2f} "
                  f"| {r['uncut']:.2f} | {r['plain']:.2f} | {r['fallback']:.2f} | {r['captum']:.2f} "
                  f"| {r['ours'] / r['fallback']:.2f}x | {r['ours'] / r['captum']:.2f}x | {r['uncut'] / r['fallback']:.2f}x "
                  f"| {r['plain'] / r['fallback']:.2f}x | {r['per_row']:.2f}x | {r['flops_fallback']:.2f}x | {r['flops_captum']:.2f}x | {mem:.0f} |", flush=True)


if __name__ == "__main__":
    main()
