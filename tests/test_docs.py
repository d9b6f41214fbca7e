"""The docs stay in step with the code: every public name has its line in docs/api.md, the recipes'
code compiles against the names that exist, the recipes' LightningCLI config runs, and every
image the docs show exists."""

from __future__ import annotations

import ast
import importlib
import os
import re
from pathlib import Path

import pytest

import lightning_causal

DOCS = Path(__file__).resolve().parents[1] / "docs"
RECIPES = (DOCS / "recipes.md").read_text()


def _api_table_names() -> set[str]:
    table = (DOCS / "api.md").read_text().split("## Reference")[0]
    return {name for row in table.splitlines() if row.startswith("| `") for name in re.findall(r"`([\w.]+)`", row.split(" | ")[0])}


def test_every_public_name_has_a_line_in_the_api_table():
    listed = _api_table_names()
    assert set(lightning_causal.__all__) <= listed, sorted(set(lightning_causal.__all__) - listed)


@pytest.mark.parametrize("package", ["audits", "callbacks", "causal", "repair", "baselines", "datasets"])
def test_every_public_name_of_a_subpackage_has_a_line_in_the_api_table(package):
    """The page promises every public name: a subpackage's ``__all__`` is listed bare (in its own table)
    or as ``<package>.<name>``."""
    listed = _api_table_names()
    listed |= {name.rpartition(".")[2] for name in listed if name.startswith(f"{package}.")}
    public = set(importlib.import_module(f"lightning_causal.{package}").__all__)
    assert public <= listed, sorted(public - listed)


def test_every_name_in_the_api_tables_exists_where_its_table_says():
    text = (DOCS / "api.md").read_text().split("## Reference")[0]
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title = section.splitlines()[0]
        module = re.search(r"\(`(lightning_causal[\w.]*)`", title)
        for row in section.splitlines():
            if not row.startswith("| `"):
                continue
            parent = None
            for name in re.findall(r"`([\w.]+)`", row.split(" | ")[0]):
                if "." in name:  # module.attribute, under lightning_causal
                    parent, _, attr = name.rpartition(".")
                    where = f"lightning_causal.{parent}"
                else:  # bare: the table's module, the top level, or the dotted name before it in the cell
                    where = f"lightning_causal.{parent}" if parent else (module.group(1) if module else "lightning_causal")
                    attr = name
                assert hasattr(importlib.import_module(where), attr), (title, where, attr)


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", RECIPES, re.S)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_recipe_code_compiles_and_imports_names_that_exist(index):
    tree = ast.parse(_python_blocks()[index])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lightning_causal"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_recipe_cli_config_with_monitoring_runs(tmp_path):
    from lightning.pytorch.cli import LightningCLI

    from lightning_causal import AuditEarlyStopping, AuditModelCheckpoint, CausalAuditCallback

    yaml = re.search(r"<!-- recipe: cli -->\s*```yaml\n(.*?)```", RECIPES, re.S).group(1)
    (tmp_path / "monitoring.yaml").write_text(yaml)
    config = Path(__file__).resolve().parents[1] / "examples" / "config_digits.yaml"
    cli = LightningCLI(args=["fit", "--config", str(config), "--config", str(tmp_path / "monitoring.yaml"),
                             "--trainer.fast_dev_run=true", f"--trainer.logger.init_args.save_dir={tmp_path}",
                             f"--trainer.default_root_dir={tmp_path}"], save_config_callback=None)
    kinds = [type(c) for c in cli.trainer.callbacks]
    assert {CausalAuditCallback, AuditEarlyStopping, AuditModelCheckpoint} <= set(kinds)
    stop = next(c for c in cli.trainer.callbacks if isinstance(c, AuditEarlyStopping))
    assert (stop.monitor, stop.patience) == ("causal/input_effect/top5_share", 2)


def test_images_shown_by_the_docs_exist():
    for page in DOCS.glob("*.md"):
        for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
            assert (DOCS / image).is_file(), (page.name, image)


# --- Every python snippet of the pages a new user follows runs as printed -------------------------
# A snippet that trains for minutes runs with the few substitutions listed beside it (fewer epochs,
# a smaller probe or sample count); each substitution must match the page exactly once, so that an
# edit of the page that the test no longer covers fails here instead of going unnoticed.


def _page_blocks(page: str) -> list[str]:
    path = DOCS.parent / page if page == "README.md" else DOCS / page
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def _run_snippet(code: str, namespace: dict, substitutions: tuple[tuple[str, str], ...] = ()) -> dict:
    for old, new in substitutions:
        assert code.count(old) == 1, f"the page no longer holds {old!r} exactly once: update the substitution"
        code = code.replace(old, new)
    exec(compile(code, "<docs snippet>", "exec"), namespace)  # noqa: S102 - the docs' own example
    return namespace


def _quiet_trainer(monkeypatch, tmp_path):
    """Every Trainer a snippet builds writes under tmp_path and prints no progress bar or summary."""
    import lightning.pytorch as pl

    monkeypatch.chdir(tmp_path)
    init = pl.Trainer.__init__

    def quiet(self, *args, **kwargs):
        kwargs.setdefault("enable_progress_bar", False)
        kwargs.setdefault("enable_model_summary", False)
        init(self, *args, **kwargs)

    monkeypatch.setattr(pl.Trainer, "__init__", quiet)


def test_every_page_with_python_snippets_is_run_by_a_test():
    pages = {p.name for p in DOCS.glob("*.md") if _page_blocks(p.name)} | {"README.md"}
    assert pages == {"README.md", "index.md", "your_model.md", "recipes.md", "text.md"}, pages


def test_readme_quick_start_runs(monkeypatch, tmp_path):
    """README's quick start on the digits CNN it audits (``model.conv1``/``model.conv2``); 15 epochs
    -> 1 (the audit then runs once, at the end of fit)."""
    from lightning_causal.datamodules import DigitsDataModule
    from lightning_causal.models import DigitsCNN, LightningClassifier

    _quiet_trainer(monkeypatch, tmp_path)
    data = DigitsDataModule()
    data.setup("fit")
    ns = {"model": LightningClassifier(DigitsCNN()), "train_loader": data.train_dataloader(), "val_loader": data.val_dataloader()}
    ns = _run_snippet(_page_blocks("README.md")[0], ns, (("max_epochs=15", "max_epochs=1"),))
    assert ns["audit"].audited_epochs == [0]
    assert len(list((tmp_path / "runs").rglob("causal_audit/epoch_0000*.json"))) == 1


def test_index_snippets_run_and_match_a_brute_force_loop(monkeypatch, tmp_path):
    """The callback set-up as printed, then the pure-PyTorch core on the digits CNN (1x8x8 inputs,
    32 filters in ``conv2``): the shapes in its comments, and the numbers of a hand-written loop."""
    import torch

    from lightning_causal.models import DigitsCNN, load_digits_tensors

    first, core = _page_blocks("index.md")
    monkeypatch.chdir(tmp_path)  # its TensorBoardLogger("runs") writes nothing in the repository
    ns = _run_snippet(first, {})
    assert [type(a).__name__ for a in ns["callback"].audits] == ["InputEffectAudit", "UnitImportanceAudit"]
    torch.manual_seed(0)
    model, x = DigitsCNN().eval(), load_digits_tensors()[0][:3]
    ns = _run_snippet(core, {"model": model, "x": x})
    assert ns["effects"].shape == (3, 16) and ns["filters"].shape == (3, 32)
    with torch.no_grad():
        clean = model(x)
        t = clean.argmax(1, keepdim=True)
        handle = model.conv2.register_forward_hook(lambda m, i, o: o.index_fill(1, torch.tensor([3, 7]), 0.0))
        patched = model(x)
        handle.remove()
        patch = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
        patch[..., 2:4, 0:2] = True  # group 4 of patch_mask((1, 8, 8), 2): row 1, column 0 of the 4x4 grid
        delta = clean.gather(1, t) - model(x.masked_fill(patch, 0.0)).gather(1, t)
    assert torch.equal(ns["y"], patched)
    torch.testing.assert_close(ns["effects"][:, 4:5], delta)


def _text_namespace() -> dict:
    """What the text snippets take as given: a tiny BERT classifier, a padded batch, token ids."""
    import torch

    from tests.helpers.text import (
        CLS,
        MASK,
        PAD,
        SEP,
        hf_classifier_module,
        tiny_bert_classifier,
        token_batch,
    )

    model = tiny_bert_classifier(dtype=torch.float32)
    ids, mask = token_batch(n=4, length=8)


    words = {"he": 4, "she": 5, "his": 6, "her": 7}  # the ids of he_id, she_id, his_id, her_id below
    tokenizer = type("Tokenizer", (), {"pad_token_id": PAD, "eos_token_id": SEP, "unk_token_id": 63,
                                       "convert_tokens_to_ids": lambda self, word: words.get(word, 63)})()
    return {"model": model, "tokenizer": tokenizer, "input_ids": ids, "attention_mask": mask, "ids": ids, "mask": mask,
            "batch": {"input_ids": ids, "attention_mask": mask}, "word_ids": torch.arange(8).expand(4, 8) // 2,
            "mask_id": MASK, "pad_id": PAD, "cls_id": CLS, "sep_id": SEP, "he_id": 4, "she_id": 5, "his_id": 6,
            "her_id": 7, "classifier": hf_classifier_module(model, torch.optim.Adam), "vocabulary": [f"##w{i}" if i % 3 == 0 else f"w{i}" for i in range(64)]}


def test_your_model_snippet_runs_on_a_hugging_face_classifier():
    ns = _run_snippet(_page_blocks("your_model.md")[0], _text_namespace())
    assert ns["effects"].shape == (4, 8) and ns["units"].shape == (4, 32)  # [N, T] and [N, D]: BERT's hidden size


def test_text_snippets_run_and_give_token_replacement_effects():
    import torch

    first, *others = _page_blocks("text.md")
    ns = _run_snippet(first, _text_namespace())
    ids, mask, model = ns["input_ids"], ns["attention_mask"], ns["model"]
    assert ns["effects"].shape == (4, 8) and ns["by_word"].shape == (4, 4)
    for block in others:
        ns = _run_snippet(block, ns)
        if "TokenSwap.from_words" in block:  # the word pairs give the ids of the line above
            assert ns["swap"].pairs == [(ns["he_id"], ns["she_id"]), (ns["his_id"], ns["her_id"])]
    with torch.no_grad():
        clean = model(ids, attention_mask=mask).logits
        t = clean.argmax(1, keepdim=True)
        replaced = ids.masked_fill((torch.arange(8) == 2) & (mask == 1), ns["mask_id"])
        delta = clean.gather(1, t) - model(replaced, attention_mask=mask).logits.gather(1, t)
    torch.testing.assert_close(ns["effects"][:, 2:3], delta)
    assert (ns["effects"][mask == 0] == 0).all()
    pieces = torch.tensor([[1, 3, 4, 6, 5, 9, 1, 2]])  # ids 3, 6 and 9 are "##" continuation pieces
    assert ns["words"](pieces).tolist() == [[0, 0, 1, 1, 2, 2, 3, 4]]


# The recipes train for minutes as printed; these substitutions make each a few seconds.
TABULAR_FAST = (("n=2000", "n=400"), ("data.x[:1600], data.y[:1600]", "data.x[:320], data.y[:320]"),
                ("data.x[1600:], data.y[1600:]", "data.x[320:], data.y[320:]"), ("max_epochs=8", "max_epochs=1"),
                ("SobolAudit(n=512", "SobolAudit(n=64"), ("BackdoorAudit(steps=50", "BackdoorAudit(steps=5"))
SEQUENCE_FAST = (("n, length = 1200, 64", "n, length = 300, 64"), ("x[:1000], y[:1000]", "x[:200], y[:200]"),
                 ("x[1000:], y[1000:]", "x[200:], y[200:]"), ("max_epochs=6", "max_epochs=1"))
WRAP_FAST = (("max_epochs=12", "max_epochs=2"),)


def test_tabular_recipe_and_its_repair_continuation_run(monkeypatch, tmp_path):
    import warnings

    _quiet_trainer(monkeypatch, tmp_path)
    tabular, _, _, wrap = _page_blocks("recipes.md")[:4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Neural Cleanse on a two-class model warns (the recipe says so)
        ns = _run_snippet(tabular, {}, TABULAR_FAST)
        assert ns["every_epoch"].audited_epochs == [0] and ns["every_fourth"].audited_epochs == [0]
        ns = _run_snippet(wrap, ns, WRAP_FAST)
    assert "causal/fairness/cf_gap" in ns["trainer"].callback_metrics
    assert ns["trainer"].checkpoint_callback.best_model_path.endswith(".ckpt")
    assert (tmp_path / "runs" / "tabular" / "causal_audit").is_dir()


def test_sequence_recipe_runs(monkeypatch, tmp_path):
    _quiet_trainer(monkeypatch, tmp_path)
    ns = _run_snippet(_page_blocks("recipes.md")[2], {}, SEQUENCE_FAST)
    assert ns["audit"].audited_epochs == [0]


def test_federated_recipe_continues_each_clients_run_and_compares_the_clients(monkeypatch, tmp_path):
    """'Federated learning': each client's kept Trainer goes on over the rounds (one report per local epoch, no
    warning of an earlier run's reports), the global model has a report per round on each client's data, and the
    fairness across clients compares the clients as groups. The figures are not drawn (half the test's time; what is
    asserted is in the runs, reports and tables; the renderer's tests draw these audits' figures)."""
    import warnings

    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    _quiet_trainer(monkeypatch, tmp_path)
    monkeypatch.setattr(TensorBoardRenderer, "_draw_figures", lambda self, *args: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ns = _run_snippet(_block("recipes.md", "class Client(pl.LightningModule)"), {},
                          (("K, ROUNDS, EPOCHS = 4, 3, 2", "K, ROUNDS, EPOCHS = 2, 2, 1"),))
    assert not [w for w in caught if "already holds reports" in str(w.message)]
    assert [t.current_epoch for t in ns["trainers"]] == [2, 2]
    runs = tmp_path / "runs" / "federated"
    assert sorted(os.listdir(runs / "client_1" / "version_0" / "causal_audit")) == ["epoch_0000.json", "epoch_0001.json"]
    assert sorted(os.listdir(runs / "global" / "client_1" / "causal_audit")) == ["epoch_0000.json", "epoch_0001.json"]
    assert "drift/mean_abs_effect/spearman" in ns["last"][1][0].scalars  # against the round before
    ns = _run_snippet(_block("recipes.md", "class FlipSByClient(Counterfactual)"), ns)
    assert [row["name"] for row in ns["across"].tables["groups"]] == ["client_0", "client_1"]
    assert [row["count"] for row in ns["across"].tables["groups"]] == [100, 100]


def test_one_hot_and_integer_counterfactual_recipe_prints_what_the_page_says(capsys):
    ns = _run_snippet(_page_blocks("recipes.md")[1], {})
    printed = capsys.readouterr().out
    assert printed == "True {'hours': 1.0, 'score': 0.761}\nTrue {'score': 0.801}\n"
    assert "It prints `True {'hours': 1.0, 'score': 0.761}` and `True {'score': 0.801}`" in " ".join(RECIPES.split())
    group = ns["cf"].counterfactuals[:, 1:4]
    assert ((group == 0) | (group == 1)).all() and (group.sum(1) == 1).all()


def test_mixed_tabular_recipe_matches_brute_force_and_keeps_its_blocks():
    """The mixed-tabular recipe: do(workclass := private) and do(region := 0) equal edits by hand, the
    audit's means are those effects', and neither the audit nor SobolAudit warns of a broken block."""
    import warnings

    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ns = _run_snippet(_page_blocks("recipes.md")[4], {})
    assert not [w for w in caught if "one-hot block" in str(w.message)]
    model, x, effects = ns["model"], ns["x"], ns["effects"]
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        private, region0 = x.clone(), x.clone()
        private[:, 2:5] = torch.tensor([1.0, 0.0, 0.0])
        region0[:, 5] = 0.0
        rolled = ns["next_workclass"](x)
        p, p_cf = out.softmax(1).gather(1, t), model(rolled).softmax(1).gather(1, t)
    torch.testing.assert_close(effects[:, 2:3], out.gather(1, t) - model(private).gather(1, t))
    torch.testing.assert_close(effects[:, 3:4], out.gather(1, t) - model(region0).gather(1, t))
    torch.testing.assert_close(ns["result"].vectors["mean_abs_effect"], effects.abs().mean(0))
    assert ((rolled[:, 2:5].sum(1) == 1) & (rolled[:, 2:5] != x[:, 2:5]).any(1)).all()
    assert ns["gap"] == pytest.approx(float((p_cf - p).abs().mean()), rel=1e-5)


_ARGS = re.compile(r"^(?:Args|Arguments|Parameters):\s*\n(.*?)(?=^\S|\Z)", re.S | re.M)
_ENTRY = re.compile(r"^ {4}(\**\w+(?:\s*,\s*\**\w+)*)\s*(?:\([^)]*\))?:", re.M)
_PACKAGES = ["lightning_causal"] + [f"lightning_causal.{p}" for p in ("audits", "callbacks", "causal", "repair", "baselines", "datasets")]


def _documented_parameters(obj: object) -> set[str]:
    """Names of the ``Args:`` entries of a docstring (the class's and its ``__init__``'s)."""
    import inspect

    docs = [inspect.getdoc(obj) or ""]
    if inspect.isclass(obj) and "__init__" in vars(obj) and obj.__init__.__doc__:
        docs.append(inspect.getdoc(obj.__init__))
    return {name.strip().lstrip("*") for doc in docs for block in _ARGS.findall(doc)
            for entry in _ENTRY.findall(block) for name in entry.split(",")}


def _public_callables():
    import inspect

    for package in _PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            try:
                yield package, name, obj, inspect.signature(obj).parameters
            except (TypeError, ValueError):  # constants and objects without a signature
                continue


def test_docstrings_document_no_parameter_that_does_not_exist():
    """A removed or renamed parameter must leave the docstrings (and so the generated reference) too."""
    phantoms = {f"{package}.{name}": sorted(_documented_parameters(obj) - set(params))
                for package, name, obj, params in _public_callables()}
    assert not {k: v for k, v in phantoms.items() if v}


def test_top_level_classes_document_every_parameter():
    import inspect

    undocumented = {}
    for package, name, obj, params in _public_callables():
        documented = _documented_parameters(obj)
        if package == "lightning_causal" and inspect.isclass(obj) and documented:
            undocumented[name] = [p for p, v in params.items() if v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD) and p not in documented]
    assert not {k: v for k, v in undocumented.items() if v}


def test_benchmark_page_says_which_scripts_make_bench_runs():
    """docs/benchmarks.md's first table is what ``make bench`` runs; every other benchmark script is in
    the table of scripts run by hand."""
    root = DOCS.parent
    page = (DOCS / "benchmarks.md").read_text()
    bench_table, hand_table = page.split("Run by hand", 1)
    in_make = re.findall(r"benchmarks/(bench_\w+\.py)", re.search(r"^bench:.*?(?=^\S|\Z)", (root / "Makefile").read_text(), re.S | re.M).group(0))
    listed, by_hand = set(re.findall(r"^\| `(bench_\w+\.py)`", bench_table, re.M)), set(re.findall(r"^\| `(bench_\w+\.py)`", hand_table, re.M))
    assert listed == set(in_make), (sorted(listed - set(in_make)), sorted(set(in_make) - listed))
    assert by_hand | listed == {p.name for p in (root / "benchmarks").glob("bench_*.py")} and not by_hand & listed


def _griffe_docstrings():
    """Every docstring of the package as griffe (mkdocstrings' parser) sees it, with its parsed sections
    and the warnings the parsing logged (what ``mkdocs build --strict`` counts)."""
    import logging

    griffe = pytest.importorskip("griffe")
    records: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger, handler = logging.getLogger("griffe"), _Keep(logging.WARNING)
    logger.addHandler(handler)
    try:
        package = griffe.load("lightning_causal", search_paths=[str(DOCS.parent)], docstring_parser="google", resolve_aliases=False)
        parsed, seen, stack = [], set(), [package]
        while stack:
            obj = stack.pop()
            if obj.is_alias or obj.path in seen:
                continue
            seen.add(obj.path)
            if obj.docstring:
                parsed.append((obj, obj.docstring.parse("google")))
            stack.extend(obj.members.values())
    finally:
        logger.removeHandler(handler)
    return parsed, records


def test_docstrings_parse_without_the_warnings_that_abort_the_strict_docs_build():
    """One ``Args:`` entry per parameter: ``units, unit_dim, num_heads: ...`` or ``lr: ... init_lambda: ...``
    on one line is one parameter to griffe ("does not appear in the function signature"; 51 such
    warnings aborted ``make docs``), and the API pages and ``help()`` then miss the others."""
    parsed, warnings = _griffe_docstrings()
    assert len(parsed) > 500  # the walk reached the package's docstrings
    assert warnings == []
    grouped, inline = [], []
    for obj, sections in parsed:
        params = {p.name for p in obj.parameters} if obj.is_function or obj.is_class else set()
        for section in sections:
            if section.kind.value not in ("parameters", "other parameters", "attributes"):
                continue
            names = {entry.name for entry in section.value}
            grouped += [f"{obj.path}: {n!r}" for n in names if "," in n]
            for entry in section.value:
                inline += [f"{obj.path}: {p!r} inside {entry.name!r}" for p in params - names - {"self", "cls"}
                           if re.search(rf"(?:^|[;.]\s+){re.escape(p)}: ", entry.description or "")]
    assert grouped == [] and inline == []


def _api_page_modules() -> list[str]:
    """The modules the API pages render (their ``::: module`` entries)."""
    return sorted({m for page in DOCS.glob("*.md") for m in re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), re.M)})


def _public_api(package) -> dict[str, object]:
    """Every public function, method and class, by path, as griffe sees it: what the API pages render
    (a ``:::`` module's members whose name does not start with ``_``, its imported names only where its
    ``__all__`` lists them, as mkdocstrings does) and what a package's ``__all__`` exports; with the
    methods of those classes whose name does not start with ``_``."""
    found: dict[str, object] = {}

    def add(obj) -> None:
        obj = obj.final_target if obj.is_alias else obj
        if not (obj.is_function or obj.is_class) or obj.path in found:
            return
        found[obj.path] = obj
        if obj.is_class:
            for name, member in obj.members.items():
                if not name.startswith("_") and not member.is_alias and member.is_function:
                    found[member.path] = member

    def get(path: str):
        obj = package
        for part in path.split(".")[1:]:
            obj = obj.members[part]
        return obj

    for path in _api_page_modules():
        module = get(path)
        if not module.is_module:
            add(module)
            continue
        for name, member in module.members.items():
            if not name.startswith("_") and (not (member.is_alias or member.is_imported) or member.is_public):
                add(member)
    for init in sorted((DOCS.parent / "lightning_causal").rglob("__init__.py")):
        path = ".".join(init.parent.relative_to(DOCS.parent).parts)
        # griffe reads a literal ``__all__``; the lazy packages' (``sorted(_EXPORTS)``) is read at run time,
        # which imports no more than the package (its names load on first use)
        for name in get(path).exports or getattr(importlib.import_module(path), "__all__", ()):
            if not name.startswith("_"):
                add(get(path).members[name])
    return found


def _undocumented_parameters(obj) -> list[str]:
    """The parameters of griffe's ``obj`` that its docstring's ``Args:`` section leaves out.

    A class documents its ``__init__``'s parameters (in its own docstring or its ``__init__``'s); a
    dataclass may document its fields under ``Attributes:`` (its own or a base's). A method without a
    docstring of its own shows the one it overrides (``help()`` does so): that one is checked; one that
    overrides none in the package, in a class with a base outside it (``nn.Module``, ``Callback``,
    ``LightningModule``), fulfils that framework's contract (``forward``, a Lightning hook) and is left
    to its documentation. ``*args``/``**kwargs`` may instead be named in the text that says where
    they go."""
    params = [p for p in obj.parameters if p.name not in ("self", "cls")]
    if not params:
        return []
    dataclass = obj.is_class and "dataclass" in obj.labels
    docs = [obj]
    if obj.is_class and "__init__" in obj.members and not obj.members["__init__"].is_alias:
        docs.append(obj.members["__init__"])
    if dataclass:
        docs += obj.mro()
    if obj.is_function and obj.parent.is_class and not obj.docstring:
        owner = obj.parent
        overridden = [b.members[obj.name] for b in owner.mro() if obj.name in b.members and not b.members[obj.name].is_alias]
        docs = [m for m in overridden if m.docstring][:1]
        if not docs and any(sum(b.is_class for b in cls.resolved_bases) < len(cls.bases) for cls in [owner, *owner.mro()]):
            return []  # a base griffe cannot resolve in the package: the framework's
    if not any(d.docstring for d in docs):
        return ["(no docstring)"]
    kinds = ("parameters", "other parameters") + (("attributes",) if dataclass else ())
    names = {entry.name.lstrip("*") for d in docs if d.docstring for section in d.docstring.parse("google")
             if section.kind.value in kinds for entry in section.value}
    text = " ".join(d.docstring.value for d in docs if d.docstring)
    return [p.name for p in params if p.name not in names
            and not (p.kind.value.startswith("variadic") and re.search(rf"\*\*?{p.name}\b", text))]


def test_every_public_parameter_is_documented():
    """Every parameter of every public function, method and class has its ``Args:`` entry, so that the
    API pages (mkdocstrings) and ``help()`` say what it is: the griffe test above only catches malformed
    entries, not missing ones."""
    parsed, _ = _griffe_docstrings()
    package = parsed[0][0].package
    public = _public_api(package)
    assert len(public) > 400  # the walk reached the API
    missing = {path: names for path, obj in sorted(public.items()) if (names := _undocumented_parameters(obj))}
    assert not missing, "\n".join(f"{path}: {', '.join(names)}" for path, names in missing.items())


# --- The recipes' short snippets that train nothing: run as printed, their printed and commented claims checked ----


def _block(page: str, marker: str) -> str:
    """The one python block of ``page`` that holds ``marker`` (robust to blocks added before it)."""
    found = [block for block in _page_blocks(page) if marker in block]
    assert len(found) == 1, f"{page}: {len(found)} python blocks hold {marker!r}"
    return found[0]


def test_one_hot_fairness_recipes_print_what_the_page_says(capsys):
    """'Fairness on a one-hot encoded table' and its ``Intersections`` continuation: the lines the page says
    they print, the demographic parity difference of the six groups by hand from the model's predictions,
    and the repair terms' names (``repair/counterfactual_fairness``, ``repair/race_fairness``)."""
    import torch

    ns = _run_snippet(_block("recipes.md", "class SexFlipByRace"), {})
    ns = _run_snippet(_block("recipes.md", "sex_x_race = Intersections("), ns)
    printed = capsys.readouterr().out.splitlines()
    page = " ".join(RECIPES.split())
    assert printed[:2] == ["['sex_Male=0', 'sex_Male=1'] ['race_Black', 'race_Other', 'race_White']", "6 0.094"]
    assert f"It prints `{printed[0]}` and `{printed[1]}`" in page
    assert printed[2] == "['female × race_Black', 'female × race_Other'] 0.094"
    assert f"It prints `{printed[2]}`" in page
    x, model = ns["x"], ns["model"]
    with torch.no_grad():
        positive = model(x).argmax(1) == 1
    groups = 3 * x[:, 2].long() + x[:, 3:6].argmax(1)
    rates = torch.stack([positive[groups == g].float().mean() for g in range(6)])
    assert ns["by_both"].scalars["demographic_parity_difference"] == pytest.approx(float(rates.max() - rates.min()))
    assert [term.name for term in ns["repair"].terms] == ["counterfactual_fairness", "race_fairness"]
    assert [row["name"] for row in ns["by_intersection"].tables["groups"]][:2] == ns["sex_x_race"].group_names[:2]


def test_several_inputs_recipe_matches_edits_by_hand():
    """'Models of several inputs': the shapes in its comments, group 1 (the image's top-right quadrant
    := 0) and group 6 (table column 2 := its mean) equal edits by hand, ACE row 6 is the curve of column 2
    over its 5-95 % quantiles; the callbacks and the repair module of the next two blocks build."""
    import torch

    ns = _run_snippet(_block("recipes.md", "class ImageTab(nn.Module)"), {})
    model, image, tab, effects, ace = ns["model"], ns["image"], ns["tab"], ns["effects"], ns["ace"]
    assert effects.shape == (64, 9) and ace.shape == (9, 8) and ns["fusion"].shape == (64, 12)
    with torch.no_grad():
        out = model(image, tab)
        t = out.argmax(1, keepdim=True)
        quadrant, column = image.clone(), tab.clone()
        quadrant[..., :4, 4:] = 0.0
        column[:, 2] = tab[:, 2].mean()
        torch.testing.assert_close(effects[:, 1:2], out.gather(1, t) - model(quadrant, tab).gather(1, t))
        torch.testing.assert_close(effects[:, 6:7], out.gather(1, t) - model(image, column).gather(1, t))
        curve = []
        for value in torch.quantile(tab[:, 2], torch.linspace(0.05, 0.95, 8)):
            column[:, 2] = value
            curve.append(model(image, column).gather(1, t).mean())
        curve = torch.stack(curve)
    torch.testing.assert_close(ace[6], curve - curve.mean())
    ns = _run_snippet(_block("recipes.md", "image_audits = CausalAuditCallback("), ns)
    ns = _run_snippet(_block("recipes.md", "CounterfactualFairnessTerm(AttributeFlip(3))"), ns)
    assert [a.name for a in ns["image_audits"].audits] == ["image_effect", "image_captum", "unit_importance"]
    assert [a.name for a in ns["table_audits"].audits] == ["tab_effect", "tab_captum"]


def test_graph_recipes_equal_whole_graph_passes():
    """'Graph neural networks': ``effects[0, k]`` is one pass of the whole graph with feature k of every
    node := 0, read at node 7; ``by_node`` is non-zero exactly within two hops of node 7 (a two-layer GCN);
    the padded-graphs wrapper gives each graph the effects of its own graph run alone."""
    import torch
    from torch import nn

    from lightning_causal.causal import input_effects

    ns = _run_snippet(_block("recipes.md", "class GraphAsSample(nn.Module)"), {})
    graph, x, edge_index = ns["graph"], ns["x"], ns["edge_index"]
    assert ns["effects"].shape == (1, 4) and ns["by_node"].shape == (30, 4) and ns["channels"].shape == (1, 8)
    with torch.no_grad():
        clean = graph(x[None])[0, 7, 1]
        for k in range(4):
            cut = x.clone()
            cut[:, k] = 0.0
            assert float(ns["effects"][0, k]) == pytest.approx(float(clean - graph(cut[None])[0, 7, 1]), abs=1e-6)
    near = torch.eye(30, dtype=torch.bool)
    near[edge_index[0], edge_index[1]] = True
    two_hops = (near.float() @ near.float())[7] > 0
    assert torch.equal(ns["by_node"].abs().sum(1) > 0, two_hops)

    ns = _run_snippet(_block("recipes.md", "class PaddedGraphs(nn.Module)"), ns)
    gcn = ns["GCN"](4, 8, 8)

    class Classifier(nn.Module):  # the usual graph classifier: model(x, edge_index, batch) -> [num_graphs, C]
        def __init__(self):
            super().__init__()
            self.gcn, self.head = gcn, nn.Linear(8, 2)

        def forward(self, x, edge_index, batch):
            h = self.gcn(x, edge_index)
            return self.head(torch.zeros(int(batch.max()) + 1, h.shape[1]).index_add_(0, batch, h))

    torch.manual_seed(0)
    node_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    adj = torch.ones(3, 4, 4) - torch.eye(4)
    x_padded = torch.randn(3, 4, 4)
    classifier = Classifier().eval()
    effects = input_effects(ns["PaddedGraphs"](classifier), x_padded, torch.arange(4).expand(1, 4, 4),
                            additional_forward_args=(adj, node_mask))
    with torch.no_grad():
        for b in range(3):
            nodes = x_padded[b][node_mask[b]]
            n = len(nodes)
            pairs = (torch.ones(n, n) - torch.eye(n)).nonzero().T
            alone = classifier(nodes, pairs, torch.zeros(n, dtype=torch.long))[0]
            t = alone.argmax()
            for k in range(4):
                cut = nodes.clone()
                cut[:, k] = 0.0
                assert float(effects[b, k]) == pytest.approx(float(alone[t] - classifier(cut, pairs, torch.zeros(n, dtype=torch.long))[0, t]), abs=1e-6)


def test_point_cloud_recipe_groups_each_point():
    """'Point clouds': the ``per_point`` mask moves each point (its 3 coordinates together) to the origin:
    group p's effect equals that edit by hand, and the callback's ``InputEffectAudit`` reports those
    effects' mean |effect| per point."""
    import torch

    from lightning_causal.audits import Probe
    from lightning_causal.causal import input_effects

    ns = _run_snippet(_block("recipes.md", "class PointNet(nn.Module)"), {})
    torch.manual_seed(0)
    model, points = ns["PointNet"]().eval(), torch.randn(4, ns["P"], 3)
    effects = input_effects(model, points, ns["per_point"])
    assert effects.shape == (4, ns["P"])
    with torch.no_grad():
        out = model(points)
        t = out.argmax(1, keepdim=True)
        moved = points.clone()
        moved[:, 5] = 0.0
        torch.testing.assert_close(effects[:, 5:6], out.gather(1, t) - model(moved).gather(1, t))
    result = ns["audit"].audits[0].run(model, Probe(points))
    torch.testing.assert_close(result.vectors["mean_abs_effect"], effects.abs().mean(0))


def test_recourse_recipes_give_the_numbers_the_page_states():
    """'Recourse': a monotone age stays at or above each input's; through the SCM income rises to 6.004 and
    debt follows to 2.501 (class 1) where the naive search's 2.002 leaves the applicant rejected; costs in
    MADs buy one MAD of income (20.02) instead of 0.1 of savings rate."""
    import torch

    ns = _run_snippet(_block("recipes.md", 'columns = ["age", "workclass=private"'), {})
    ns = _run_snippet(_block("recipes.md", "low[:, 0] = x[:, 0]"), ns)
    cf, x = ns["cf"], ns["x"]
    assert cf.success.all() and (cf.counterfactuals[:, 0] >= x[:, 0]).all()
    assert torch.equal(cf.counterfactuals[:, [0, 4]], cf.counterfactuals[:, [0, 4]].round())
    assert (cf.counterfactuals[:, 1:4].sum(1) == 1).all()

    ns = _run_snippet(_block("recipes.md", "class ThroughSCM(nn.Module)"), {})
    scm, model, x, naive, x_cf = ns["scm"], ns["model"], ns["x"], ns["naive"], ns["x_cf"]
    page = " ".join(RECIPES.split())
    assert "`naive.delta` `[2.002, 0, 0]`" in page and "`x_cf` `[6.004, 2.501, 0]`" in page
    torch.testing.assert_close(naive.delta, torch.tensor([[2.002, 0.0, 0.0]]), atol=5e-4, rtol=0)
    torch.testing.assert_close(x_cf, torch.tensor([[6.004, 2.501, 0.0]]), atol=5e-4, rtol=0)
    with torch.no_grad():
        assert int(model(scm.counterfactual(x, {"income": naive.counterfactuals[:, 0]})).argmax()) == 0
        assert int(model(x_cf).argmax()) == 1
    torch.testing.assert_close(x_cf, scm.counterfactual(x, {"income": x_cf[:, 0]}))

    ns = _run_snippet(_block("recipes.md", "mad = (data - data.median(0).values)"), {})
    assert "`raw.delta` `[0, 0.1]`" in page and "`cf.delta` is `[20.02, 0]`" in page
    torch.testing.assert_close(ns["mad"], torch.tensor([20.0, 0.05]))
    torch.testing.assert_close(ns["raw"].delta, torch.tensor([[0.0, 0.1]]), atol=5e-4, rtol=0)
    torch.testing.assert_close(ns["cf"].delta, torch.tensor([[20.02, 0.0]]), atol=5e-3, rtol=0)


def test_text_activation_patching_snippet_does_what_its_comments_say():
    """docs/text.md 'Activation patching': patching position 5 of block 0 gives back the clean logit
    difference, ``by_position`` is 0 before the changed token, each head's effect equals a hand-written
    pre-hook patch of its slice, and ``LastRealToken`` on right padding reads the numbers of left padding."""
    import torch

    pytest.importorskip("transformers")
    ns = _run_snippet(_block("text.md", "from lightning_causal.causal import Patch"), {})
    torch.testing.assert_close(ns["patched_ld"], ns["clean_ld"])
    assert (ns["by_position"][:, :5] == 0).all() and (ns["by_position"][:, 5] != 0).all()
    lm, acts, heads, logit_diff = ns["lm"], ns["acts"], ns["heads"], ns["logit_diff"]
    for h in range(4):
        def patch(module, args, h=h):
            patched = args[0].clone()
            patched[..., 8 * h:8 * (h + 1)] = acts[heads][..., 8 * h:8 * (h + 1)]
            return (patched,)

        handle = lm.transformer.h[1].attn.c_proj.register_forward_pre_hook(patch)
        try:
            with torch.no_grad():
                by_hand = ns["corrupted_ld"] - logit_diff(lm(ns["corrupted"], **ns["lm_args"]))
        finally:
            handle.remove()
        torch.testing.assert_close(ns["head_effects"][:, h], by_hand)
    ns = _run_snippet(_block("text.md", "class LastRealToken(torch.nn.Module)"), ns)
    right = torch.tensor([[7, 12, 9, 7, 0, 0], [3, 8, 5, 14, 21, 3]])
    with torch.no_grad():
        read = ns["LastRealToken"](lm)(right, (torch.arange(6) < torch.tensor([[4], [6]])).long())
        torch.testing.assert_close(read, lm(ns["clean"], **ns["lm_args"]).logits[:, -1])


def test_sequence_recipe_network_can_learn_where_the_bump_is():
    """The 1-D sequence recipe's classes differ only in where the bump stands (t = 16 or 40): a network
    ending in a global max pool (``AdaptiveMaxPool1d(1)``, as the recipe had it) cannot see where, stayed at
    chance (val accuracy 0.46 after the recipe's 6 epochs) and its TensorBoard views showed an untrained
    model. Its data and network, trained by hand for 2 epochs, separate the classes."""
    import torch
    import torch.nn.functional as F

    code = _block("recipes.md", "centre = torch.where(y == 1, 40.0, 16.0)")
    ns = _run_snippet(code.split("windows = ")[0], {})
    net, x, y = ns["net"], ns["x"], ns["y"]
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)  # the recipe's LightningClassifier(net, lr=1e-2)
    for _ in range(2):
        for i in range(0, 1000, 64):
            optimizer.zero_grad()
            F.cross_entropy(net(x[i:i + 64]), y[i:i + 64]).backward()
            optimizer.step()
    with torch.no_grad():
        assert (net(x[1000:]).argmax(1) == y[1000:]).float().mean() > 0.9


def test_the_drift_monitor_quoted_by_the_monitoring_section_is_one_the_tabular_recipe_logs(monkeypatch, tmp_path):
    """'Monitoring with sparse schedules' quotes a drift monitor for the unit ranking: it must name a scalar
    that the tabular recipe's ``UnitImportanceAudit`` logs (the page quoted ``causal/units/...net.2``, an audit
    and a layer no recipe has: refused at set-up), and be checked from the audit's second run on."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_causal import AuditEarlyStopping, CausalAuditCallback, UnitImportanceAudit
    from lightning_causal.datasets import make_synthetic_fairness
    from lightning_causal.models import MLP, LightningClassifier

    monitor = re.search(r'AuditEarlyStopping\("(causal/[^"]*/drift/[^"]*)"', RECIPES).group(1)
    assert 'UnitImportanceAudit(["model.net.1", "model.net.3"], top_k=5)' in RECIPES  # the tabular recipe's
    _quiet_trainer(monkeypatch, tmp_path)
    pl.seed_everything(0)
    data = make_synthetic_fairness(n=256, seed=0)
    model = LightningClassifier(MLP(4, hidden=(32, 16), out_features=2), lr=1e-2)
    audit = CausalAuditCallback([UnitImportanceAudit(["model.net.1", "model.net.3"], top_k=5)], probe_size=32)
    stop = AuditEarlyStopping(monitor, mode="max", stopping_threshold=1.5)  # never reached: it never stops
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, callbacks=[audit, stop])
    trainer.fit(model, DataLoader(TensorDataset(data.x, data.y), batch_size=64),
                DataLoader(TensorDataset(data.x[:64], data.y[:64]), batch_size=64))
    # checked once, at the second audit (the first has no drift): its value became the best score
    assert float(stop.best_score) == pytest.approx(audit.last_scalars[monitor])


def test_text_word_ids_recipe_turns_a_fast_tokenizers_word_ids_into_word_groups(tmp_path):
    """docs/text.md's inline recipe for a fast tokenizer's ``word_ids()`` (``None`` at special tokens and
    padding, which ``input_effects`` refuses as a group id): run on a real ``BertTokenizerFast`` and a tiny BERT,
    word ``k`` is column ``k`` (its pieces replaced together, equal to the edit by hand) and position ``j``'s
    special token column ``T + j``."""
    import torch

    transformers = pytest.importorskip("transformers")
    from lightning_causal.causal import input_effects

    recipe = re.search(r"`(word_ids = torch\.tensor\(\[\[T \+ j.*?\]\))`", (DOCS / "text.md").read_text()).group(1)
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "he", "she", "is", "a",
                                                    "good", "nurse", "##s", "doctor"]))
    tokenizer = transformers.BertTokenizerFast(str(tmp_path / "vocab.txt"))
    enc = tokenizer(["he is a good nurses", "she is a doctor"], padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    ns = _run_snippet(recipe, {"torch": torch, "enc": enc, "T": ids.shape[1], "N": len(ids)})
    word_ids, t = ns["word_ids"], ids.shape[1]
    assert word_ids[0].tolist() == [t, 0, 1, 2, 3, 4, 4, t + 7] and word_ids[1].tolist() == [t, 0, 1, 2, 3, t + 5, t + 6, t + 7]
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=13, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    model = transformers.BertForSequenceClassification(config).double().eval()
    by_word = input_effects(model, ids, word_ids, tokenizer.mask_token_id, additional_forward_args={"attention_mask": mask})
    assert by_word.shape == (2, 2 * t)
    with torch.no_grad():
        clean = model(ids, attention_mask=mask).logits
        c = clean.argmax(1, keepdim=True)
        nurses = ids.clone()
        nurses[0, 5:7] = tokenizer.mask_token_id  # word 4 of the first sentence: "nurse", "##s"
        by_hand = clean.gather(1, c)[0] - model(nurses, attention_mask=mask).logits.gather(1, c)[0]
    torch.testing.assert_close(by_word[0, 4:5], by_hand)
    assert (by_word[1, t + 6:] == 0).all()  # padding
    with pytest.raises(ValueError, match="non-negative group ids"):  # None as -1, which the page says is refused
        input_effects(model, ids, word_ids.masked_fill(word_ids >= t, -1), tokenizer.mask_token_id,
                      additional_forward_args={"attention_mask": mask})


def test_own_audit_recipe_cap_at_zero_equals_unit_importance():
    """'Writing your own audit': after a ReLU, capping at 0 is ``Zero()``, so ``cap_zero``'s importances are
    ``UnitImportanceAudit(["net.1"])``'s; ``CapAt`` works row by row (the same numbers at any chunking); the
    audit's ``validate`` refuses a layer the model lacks. The recipe's classes, without its 3-epoch fit."""
    import torch

    from lightning_causal.audits import Probe, UnitImportanceAudit

    code = _block("recipes.md", "class CappedUnitsAudit(Audit)")
    ns = _run_snippet(code.split("torch.manual_seed(0)\nx = ")[0], {})
    torch.manual_seed(0)
    model, probe = ns["Classifier"]().eval(), Probe(torch.randn(64, 4))
    cap_zero = ns["CappedUnitsAudit"]("net.1", 0.0, name="cap_zero")
    result = cap_zero.run(model, probe)
    torch.testing.assert_close(result.vectors["importance"],
                               UnitImportanceAudit(["net.1"]).run(model, probe).vectors["importance/net.1"])
    cap_half = ns["CappedUnitsAudit"]("net.1", 0.5, name="cap_half")
    torch.testing.assert_close(cap_half.run(model, probe, max_batch_size=3).vectors["importance"],
                               cap_half.run(model, probe).vectors["importance"])
    with pytest.raises(ValueError, match="to name a module of the model"):
        ns["CappedUnitsAudit"]("net.9", 0.5).validate(model, probe)
