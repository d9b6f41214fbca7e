"""Screenshots of TensorBoard on the demo and recipe runs, taken with headless Chromium.

    make screenshots            # .venv/bin/python scripts/screenshots.py [--runs runs] [--out docs/img]

1. Chromium: Debian's ``chromium`` package; installed with ``apt-get`` when missing (said so).
2. Runs: ``runs/digits`` and ``runs/backdoor`` from ``make demo``, ``runs/tabular``,
   ``runs/tabular_repair`` and ``runs/sequence`` from the recipes in ``docs/recipes.md`` (their code
   blocks, run as printed), ``runs/text`` from ``examples/text_transformer.py --epochs 2``; each is
   created only when missing (``--rerun`` recreates them).
3. For each run, a TensorBoard on that run alone (through a symbolic link named after the run:
   TensorBoard's Time Series dashboard shows no images of a run named ``.``) and one screenshot
   per view (the Time Series dashboard filtered to some tags, the custom scalars, the text card),
   each taken twice, the first load warming TensorBoard's caches, written to
   ``docs/img/tb_<run>_<view>.png``. Look at every PNG after changing a figure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

# the Time Series dashboard filtered to some tags; forceSVG draws line charts as SVG (headless Chromium
# shows no WebGL chart); smoothing=0 draws each scalar's logged values (TensorBoard's default 0.6 draws a
# smoothed line over them, whose values are no audit's: the repair's last gap 0.0010 read 0.0013)
_TS = "?forceSVG=true&smoothing=0&tagFilter="
# (png name, run directory under --runs, TensorBoard URL suffix, window height)
VIEWS = [
    ("tb_digits_maps", "digits", _TS + quote("input_effect/maps/sample_[01]") + "#timeseries", 1000),
    ("tb_digits_bars", "digits", _TS + quote("bars/importance/model.conv2") + "#timeseries", 900),
    ("tb_digits_scalars", "digits", _TS + quote("^causal/input_effect/(mean|top|drift/mean_abs_effect/spearman)")
     + "#timeseries", 1000),
    ("tb_digits_custom_scalars", "digits", "#custom_scalars", 1000),
    ("tb_digits_text", "digits", "#text", 1000),
    ("tb_backdoor_triggers", "backdoor/poisoned", _TS + quote("backdoor_detect/(images|curves)") + "#timeseries", 1000),
    ("tb_backdoor_text", "backdoor/poisoned", "#text", 1000),
    ("tb_tabular_maps", "tabular", _TS + quote("maps/top_features") + "#timeseries", 1000),
    ("tb_tabular_intervals", "tabular", _TS + quote("intervals|fairness/bars|unit_importance/bars/importance/model.net.3")
     + "#timeseries", 1000),
    ("tb_tabular_custom_scalars", "tabular", "#custom_scalars", 1100),
    ("tb_tabular_text", "tabular", "#text", 1300),
    ("tb_sequence_maps", "sequence", _TS + quote("maps/sample_0") + "#timeseries", 1100),
    ("tb_sequence_text", "sequence", "#text", 1000),
    ("tb_repair_scalars", "tabular_repair", _TS + quote("^causal/fairness/(cf_gap|cf_flip_rate)$") + "#timeseries", 800),
    ("tb_text_tokens", "text/train", _TS + quote("tokens/maps/sample_[01]") + "#timeseries", 1000),
    ("tb_text_heads", "text/train", _TS + quote("(heads|neurons)/bars") + "#timeseries", 1000),
    ("tb_text_graph", "text/train", _TS + quote("causal_graph/graphs") + "#timeseries", 900),
    ("tb_text_layer_map", "text/train", _TS + quote("layer_map/graphs") + "#timeseries", 800),
]


def chromium() -> str:
    """The Chromium binary; Debian's package is installed with apt-get when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    print("chromium is missing: installing Debian's chromium package with apt-get (needs root and the package mirror)")
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "fonts-dejavu-core"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("chromium")
    if not found:
        sys.exit("apt-get installed chromium but no `chromium` binary is on PATH")
    return found


def recipe_code(*names: str) -> str:
    """The python blocks of docs/recipes.md marked ``<!-- recipe: name -->``, joined in order."""
    text = (ROOT / "docs" / "recipes.md").read_text()
    blocks = []
    for name in names:
        match = re.search(rf"<!-- recipe: {name} -->\s*```python\n(.*?)```", text, re.S)
        if match is None:
            sys.exit(f"docs/recipes.md has no python block marked <!-- recipe: {name} -->")
        blocks.append(match.group(1))
    return "\n".join(blocks)


def ensure_runs(runs: Path, rerun: bool, needed: set[str]) -> None:
    """Create the runs in ``needed`` (top-level run directories), each only when missing (or with
    ``rerun``)."""
    jobs = [
        (["digits"], [PY, "examples/demo_digits.py", "--logdir", str(runs / "digits")]),
        (["backdoor"], [PY, "examples/backdoor_digits.py", "--logdir", str(runs / "backdoor")]),
        (["tabular", "tabular_repair"], [PY, "-c", recipe_code("tabular", "wrap")]),
        (["sequence"], [PY, "-c", recipe_code("sequence")]),
        (["text"], [PY, "examples/text_transformer.py", "--logdir", str(runs / "text"), "--epochs", "2"]),
    ]
    for names, command in jobs:
        if not needed & set(names) or not rerun and all((runs / n).is_dir() for n in names):
            continue
        for n in names:
            shutil.rmtree(runs / n, ignore_errors=True)
        print(f"creating {', '.join(str(runs / n) for n in names)} ...", flush=True)
        t0 = time.perf_counter()
        subprocess.run(command, cwd=runs.parent if command[1] == "-c" else ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
        print(f"  done in {time.perf_counter() - t0:.0f} s", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tensorboard(run: Path, name: str, scratch: Path) -> tuple[subprocess.Popen, str]:
    logdir = scratch / name.replace("/", "_")
    logdir.mkdir()
    (logdir / name.replace("/", "_")).symlink_to(run, target_is_directory=True)
    port = free_port()
    tensorboard = Path(PY).with_name("tensorboard")
    proc = subprocess.Popen([str(tensorboard), "--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(120):
        try:
            with urllib.request.urlopen(url + "data/runs", timeout=2) as response:
                if response.status == 200 and response.read() not in (b"[]", b""):
                    return proc, url
        except OSError:
            pass
        time.sleep(0.5)
    proc.terminate()
    sys.exit(f"TensorBoard on {logdir} did not answer at {url}")


def cards_drawn(png: Path) -> bool:
    """Whether the Time Series cards of a screenshot show something: they load lazily, and a card
    not loaded yet is a blank white box (no dark pixel below the filter bar, left of the settings)."""
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[..., :3]
    h, w = img.shape[:2]
    area = img[int(0.16 * h):, int(0.2 * w) : int(0.74 * w)]
    return float((area.mean(-1) < 0.45).mean()) > 0.002


def screenshot(browser: str, url: str, png: Path, height: int, scratch: Path, attempts: int = 6) -> None:
    """The first load warms TensorBoard's caches; Time Series views are taken again (with more
    virtual time) until their cards are drawn."""
    for attempt in range(attempts):
        target = scratch / "warm-up.png" if attempt == 0 else png
        command = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
                   f"--user-data-dir={scratch / 'profile'}", f"--window-size=1500,{height}",
                   f"--virtual-time-budget={30000 + 15000 * attempt}", f"--screenshot={target}", url]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
        if attempt > 0 and ("#timeseries" not in url or cards_drawn(png)):
            print(f"  {png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}")
            return
    print(f"  {png}: the cards were still blank after {attempts} loads (kept the last one)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=str(ROOT / "runs"), help="directory of the runs (created when missing)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"), help="directory of the PNGs")
    parser.add_argument("--rerun", action="store_true", help="recreate the runs even when they exist")
    parser.add_argument("--only", default=None, help="regex: only the views whose PNG name matches")
    args = parser.parse_args()
    runs, out = Path(args.runs).resolve(), Path(args.out).resolve()
    if runs.name != "runs":
        sys.exit("Expected --runs to be a directory named `runs` (the recipes log to ./runs/<name>)")
    runs.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    views = [v for v in VIEWS if args.only is None or re.search(args.only, v[0])]
    ensure_runs(runs, args.rerun, {v[1].split("/")[0] for v in views})
    with tempfile.TemporaryDirectory(prefix="lc-screenshots-") as tmp:
        for run in dict.fromkeys(v[1] for v in views):
            proc, url = start_tensorboard(runs / run, run, Path(tmp))
            print(f"TensorBoard on {runs / run} at {url}")
            try:
                for name, _, suffix, height in (v for v in views if v[1] == run):
                    screenshot(browser, url + suffix, out / f"{name}.png", height, Path(tmp))
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
