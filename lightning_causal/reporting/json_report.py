"""JSON reports: one file per audit epoch; read back with :func:`load_report` (no unpickling)."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_causal.audits.base import SCHEMA_VERSION, AuditResult

__all__ = ["write_report", "load_report", "report_path", "try_write_probe_file", "is_url", "list_reports", "local_path"]

_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]+://")  # s3://, gs://, hdfs://, memory://: not file://, nor C:\
# fsspec's chained URLs, ``<protocol>::<url>``: simplecache::s3://bucket/x, filecache::gs://b/x (were local paths)
_CHAINED = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]+(?:://[^:]*)?::")


def is_url(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a URL of a filesystem other than the local one (``s3://bucket/logs``), or an fsspec chain of
    them (``simplecache::s3://bucket/logs``, ``filecache::gs://b/logs``), where reports are written and read through
    fsspec, as Lightning writes its logs and checkpoints there; ``file://`` is local (the path it names).

    Args:
        path: a directory or file path, or a URL.

    Examples:
        >>> is_url("s3://bucket/logs"), is_url("logs/causal_audit"), is_url("file:///tmp/x"), is_url(r"C:\\logs")
        (True, False, False, False)
        >>> is_url("simplecache::s3://bucket/logs"), is_url("logs/a::b")
        (True, False)
    """
    text = os.fspath(path)
    if not isinstance(text, str):
        return False
    return bool(_CHAINED.match(text)) or (bool(_URL.match(text)) and not text.startswith("file://"))


def local_path(path: str | os.PathLike) -> Path:
    """A local path as a ``Path``: a ``file://`` URL is the path it names (Lightning's loggers, through fsspec, write
    ``file:///tmp/logs`` to ``/tmp/logs``; ``Path`` reads it as a relative directory ``file:``).

    Args:
        path: a local path or a ``file://`` URL (not :func:`is_url`).

    Examples:
        >>> local_path("file:///tmp/logs") == local_path("/tmp/logs")
        True
    """
    text = os.fspath(path)
    return Path(text[len("file://"):] if isinstance(text, str) and text.startswith("file://") else text)


def _filesystem(url: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs  # declared (pyproject), and imported by Lightning itself

    return url_to_fs(url)


def list_reports(report_dir: str | os.PathLike) -> list[str] | None:
    """The file names in ``report_dir`` (local or a URL), or ``None`` where it is no directory.

    Args:
        report_dir: the directory of the reports.

    Examples:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> _ = write_report(d, 3, "epoch_end", [AuditResult("demo", scalars={"z": 1.0})])
        >>> list_reports(d), list_reports(f"{d}/missing")
        (['epoch_0003.json'], None)
    """
    if is_url(report_dir):
        fs, root = _filesystem(os.fspath(report_dir))
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)] if fs.isdir(root) else None
    local = local_path(report_dir)
    return os.listdir(local) if local.is_dir() else None


def report_path(report_dir: str | os.PathLike, epoch: int, stage: str, *, tag: str = "") -> Path | str:
    """``<report_dir>/epoch_<epoch>[_<tag>][_<stage>].json`` (no stage suffix for ``"epoch_end"``): ``tag``
    tells apart the reports of several audit callbacks that write to one directory. A ``Path``; for a ``report_dir``
    that is a URL (:func:`is_url`: ``s3://bucket/logs/causal_audit``), the URL of the report, a string.

    Args:
        report_dir: the directory of the reports.
        epoch: the audited epoch.
        stage: when the audit ran (``"epoch_end"``, ``"fit_end"``, ...).
        tag: as above; ``""``: none.
    """
    suffix = ("" if not tag else f"_{tag}") + ("" if stage == "epoch_end" else f"_{stage}")
    if is_url(report_dir):  # Path("s3://b/x") is the local s3:/b/x
        return f"{os.fspath(report_dir).rstrip('/')}/epoch_{epoch:04d}{suffix}.json"
    return local_path(report_dir) / f"epoch_{epoch:04d}{suffix}.json"


def write_report(
    report_dir: str | os.PathLike, epoch: int, stage: str, results: Sequence[AuditResult], *, extra: dict | None = None,
    tag: str = "",
) -> Path | str:
    """Write ``{"schema_version", "epoch", "stage", "audits": {name: result}}`` to
    :func:`report_path` (``tag``: see there), as compact JSON (one line: the maps are most of a report, and
    ``indent=1`` made it half as large again and twice as slow to write); return the path (a URL where ``report_dir``
    is one: written through fsspec, as Lightning's loggers write there).

    Each result is :meth:`~lightning_causal.audits.AuditResult.to_dict` plus ``"non_finite"``: the place
    (a list of keys and list indices in that entry) of every NaN or infinity, which strict JSON
    cannot hold and which is written as the string ``"nan"``, ``"inf"`` or ``"-inf"``; a word or name
    spelt so (a vocabulary's ``nan``) is not listed, so a reader tells the two apart.

    Args:
        report_dir: the directory of the reports (created if missing), or a URL (``s3://bucket/logs/causal_audit``).
        epoch: the audited epoch.
        stage: when the audit ran, as in :func:`report_path`.
        results: the audits' results.
        extra: more top-level entries of the report; ``None``: none.
        tag: as in :func:`report_path`.

    Raises:
        ValueError: two results of one audit name (give the audits distinct ``name=``), or ``extra``
            naming an entry of the report's own (``schema_version``, ``epoch``, ``stage``, ``audits``).

    Examples:
        >>> import json, tempfile
        >>> from lightning_causal.audits import AuditResult
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = write_report(d, 3, "fit", [AuditResult("toy", scalars={"effect": 0.5})])
        ...     report = json.loads(path.read_text())
        >>> path.name
        'epoch_0003_fit.json'
        >>> report["epoch"], report["stage"], report["audits"]["toy"]["scalars"]
        (3, 'fit', {'effect': 0.5})
    """
    names = [r.audit for r in results]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"Expected argument `results` to hold one result per audit name but got {twice} more than once; "
                         "the report files them by name, so one would replace the other: pass the audits distinct `name=`")
    clash = sorted(set(extra or {}) & {"schema_version", "epoch", "stage", "audits"})
    if clash:
        raise ValueError(f"Expected argument `extra` to name entries other than the report's own but got {clash}")
    path = report_path(report_dir, epoch, stage, tag=tag)
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "epoch": epoch,
        "stage": stage,
        "audits": {r.audit: _entry(r) for r in results},
        **(extra or {}),
    }
    _atomic_write(path, json.dumps(doc, separators=(",", ":"), allow_nan=False))  # compact: maps are most of it
    return path


def _remote_write(url: str, text: str) -> None:
    """Write ``text`` to ``url`` through fsspec (an object store writes the object whole when the file closes)."""
    fs, path = _filesystem(url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    with fs.open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


_GROUPS = ("scalars", "vectors", "maps", "tables", "curves", "graphs")  # the numbers of a result (meta: as it is)
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_GRAPH_KINDS = ("causal_graph", "layer_map")  # CausalGraph.to_dict, LayerCausalMap.to_dict: NaN, inf already strings
_GRAPH_WORDS = ("kind", "id", "layer", "source", "target")  # the keys of their names; lists hold names but these:
_GRAPH_NUMBER_LISTS = ("cka", "response", "group_effects")


def _entry(result: AuditResult) -> dict[str, Any]:
    """``result.to_dict()`` with ``"non_finite"``, the places of the strings there that stand for numbers."""
    entry = result.to_dict()
    places: list[list[str | int]] = []
    for group in _GROUPS:
        value = getattr(result, group)
        if group == "graphs":  # a graph's numbers that its to_dict wrote as strings are numbers all the same
            value = _graphs_read(value)
        _find_non_finite(entry[group], value, [group], places)
    entry["non_finite"] = places
    return entry


def _graphs_read(graphs: Mapping[str, Any]) -> dict[str, Any]:
    """``graphs`` (an audit's, or a report entry's) with each graph of ``CausalGraph.to_dict`` or
    ``LayerCausalMap.to_dict`` read by :func:`_graph_numbers`; other graphs as they are."""
    return {name: _graph_numbers(g) if isinstance(g, dict) and g.get("kind") in _GRAPH_KINDS else g
            for name, g in graphs.items()}


def _graph_numbers(value: Any, key: str = "") -> Any:
    """A graph dict of ``CausalGraph.to_dict`` or ``LayerCausalMap.to_dict``, which write NaN and infinities as
    ``"nan"``, ``"inf"``, ``"-inf"`` (a node's z with no variance, a layer's CKA of no spread), with those strings as
    floats at the places of numbers: each value of its dicts (its nodes, edges, meta) but the names (``kind``, ``id``,
    ``layer``, ``source``, ``target``) and the lists of names (``layers``, ``class_names``), and each item of its lists
    of numbers (``cka``, ``response``, ``group_effects``)."""
    if isinstance(value, dict):
        return {k: _graph_numbers(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_graph_numbers(v, key) if isinstance(v, (dict, list)) or key in _GRAPH_NUMBER_LISTS else v for v in value]
    if isinstance(value, str) and key not in _GRAPH_WORDS:
        return _NON_FINITE.get(value, value)
    return value


def _find_non_finite(written: Any, value: Any, place: list[str | int], places: list[list[str | int]]) -> None:
    """Append to ``places`` the place of each string ``"nan"``/``"inf"``/``"-inf"`` in ``written`` (the JSON
    form of ``value``) that ``value`` holds as a number: not a string there, or inside a tensor or array."""
    if isinstance(written, str):
        if written in _NON_FINITE and not isinstance(value, str):
            places.append(place)
    elif not isinstance(value, (Mapping, list, tuple)):  # a tensor, an array: numbers all the way down
        if not (hasattr(value, "isfinite") and bool(value.isfinite().all())):
            _all_non_finite(written, place, places)
    elif isinstance(written, dict):
        names = {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}
        for key, item in written.items():
            _find_non_finite(item, names.get(key), [*place, key], places)
    elif isinstance(written, list):
        for i, item in enumerate(written):
            _find_non_finite(item, value[i] if i < len(value) else None, [*place, i], places)


def _all_non_finite(written: Any, place: list[str | int], places: list[list[str | int]]) -> None:
    """Append to ``places`` the place of every ``"nan"``/``"inf"``/``"-inf"`` in ``written``, numbers all."""
    if isinstance(written, str):
        if written in _NON_FINITE:
            places.append(place)
    elif isinstance(written, list):
        for i, item in enumerate(written):
            _all_non_finite(item, [*place, i], places)


def _atomic_write(path: Path | str, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it: a reader sees the old file
    or the complete new one, never a partial one; on failure no temporary file is left. A URL: :func:`_remote_write`."""
    if isinstance(path, str):
        _remote_write(path, text)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def try_write_probe_file(report_dir: str | os.PathLike) -> str | None:
    """Create ``report_dir`` and write and remove a small file there; ``None`` if that worked,
    else the error (a string), so that a bad ``report_dir`` is found before training.

    Args:
        report_dir: the directory of the reports.
    """
    try:
        if is_url(report_dir):
            probe = f"{os.fspath(report_dir).rstrip('/')}/.write_check"
            _remote_write(probe, "ok")  # creates the directory
            fs, path = _filesystem(probe)
            fs.rm(path)
            return None
        path = local_path(report_dir)
        path.mkdir(parents=True, exist_ok=True)
        _atomic_write(path / ".write_check", "ok")
        (path / ".write_check").unlink()
    except (OSError, ImportError, ValueError) as err:  # no fsspec implementation of the URL's protocol installed
        return repr(err)
    return None


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read a report written by :class:`~lightning_causal.callbacks.CausalAuditCallback`.

    The file is strict JSON, which has no NaN or infinity: they are written as the strings
    ``"nan"``, ``"inf"``, ``"-inf"``, their places listed in each audit's ``"non_finite"``
    (:func:`write_report`), and read back as floats in each audit's ``scalars``, ``vectors``,
    ``maps``, ``tables``, ``curves`` and ``graphs`` (a group's rate with no rows, a node's z with no
    variance); words and names spelt so stay strings; ``meta`` (names, words) is read as it is. A
    report written before ``"non_finite"`` existed has every such string of those groups read as a number; one whose
    ``"non_finite"`` lists no place in its causal graph or layer map (written before it listed them) has theirs read
    all the same, their names (layers, nodes) kept.

    Args:
        path: the report's path, or its URL (``s3://bucket/logs/causal_audit/epoch_0003.json``, read through fsspec).

    Raises:
        ValueError: if the file is no JSON, not a lightning_causal report or has an unknown schema version.

    Examples:
        >>> import tempfile
        >>> path = write_report(tempfile.mkdtemp(), 3, "epoch_end", [AuditResult("demo", scalars={"z": float("inf")})])
        >>> path.name, load_report(path)["audits"]["demo"]["scalars"]
        ('epoch_0003.json', {'z': inf})
    """
    try:
        doc = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise ValueError(f"Expected argument `path` {str(path)!r} to be a lightning_causal audit report (JSON) but it is "
                         f"no JSON: {err}") from err
    if not isinstance(doc, dict) or "audits" not in doc:
        raise ValueError(f"Expected a lightning_causal audit report in {str(path)!r} but found no 'audits' key")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"Expected report schema_version {SCHEMA_VERSION} but got {doc.get('schema_version')!r} in {str(path)!r}"
        )
    for name, result in doc["audits"].items():
        if isinstance(result, dict) and isinstance(result.get("non_finite"), list):
            for place in result["non_finite"]:
                _read_number(result, place, name, path)
            if isinstance(result.get("graphs"), dict):  # a report written before a graph's places were listed
                result["graphs"] = _graphs_read(result["graphs"])
        elif isinstance(result, dict):  # written before the places were listed
            for key in _GROUPS:
                if key in result:
                    result[key] = _numbers(result[key])
    return doc


def _read_text(path: str | os.PathLike) -> str:
    if is_url(path):
        fs, local = _filesystem(os.fspath(path))
        with fs.open(local, "r", encoding="utf-8") as fh:
            return fh.read()
    return local_path(path).read_text(encoding="utf-8")


def _read_number(entry: dict[str, Any], place: list, audit: str, path: str | os.PathLike) -> None:
    """The string at ``place`` in ``entry`` turned into its float."""
    try:
        *inner, last = place
        holder: Any = entry
        for key in inner:
            holder = holder[key]
        holder[last] = _NON_FINITE[holder[last]]
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise ValueError(
            f"Expected `non_finite` of audit {audit!r} in {str(path)!r} to list places of 'nan', 'inf' or '-inf' "
            f"but got {place!r}"
        ) from err


def _numbers(value: Any) -> Any:
    """``value`` with the strings that stand for NaN and infinities turned back into floats."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value
