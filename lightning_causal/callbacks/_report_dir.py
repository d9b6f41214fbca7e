"""Where :class:`~lightning_causal.callbacks.audit.CausalAuditCallback` writes its JSON reports: the
directory (given, else ``<log_dir>/causal_audit``, the run's directory of a logger Lightning knows no ``log_dir`` of;
none under ``fast_dev_run``), the tag that names a
later callback's reports in a shared directory, the check that it is writable (rank 0 writes a file,
every rank learns the outcome) and the warning about an earlier run's reports there."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.audits.base import Audit
from lightning_causal.reporting.json_report import (
    is_url,
    list_reports,
    local_path,
    try_write_probe_file,
)

__all__ = ["check_report_dir", "place", "report_tag", "resolved_report_dir", "run_directory", "same_directory", "warn_earlier_reports"]


def resolved_report_dir(given: str | None, trainer: Trainer) -> str | None:
    """``report_dir`` as given, else ``<run directory>/causal_audit`` (:func:`run_directory`; none under ``fast_dev_run``)."""
    if given is not None:
        return given
    if trainer.fast_dev_run:
        return None  # fast_dev_run writes no logs nor checkpoints: no report either (audits still run)
    return os.path.join(run_directory(trainer), "causal_audit")


def run_directory(trainer: Trainer) -> str:
    """The directory of the fit's own files: the first logger's ``log_dir`` for a ``TensorBoardLogger`` or ``CSVLogger``
    (``trainer.log_dir``), ``default_root_dir`` without a logger, and for any other logger (MLflow's, W&B's, Comet's, one
    of your own) ``<save_dir>/<name>/<version>``, the directory of ``ModelCheckpoint``'s ``checkpoints/`` (``save_dir``
    ``None``: ``default_root_dir``). ``trainer.log_dir`` is such a logger's ``save_dir`` alone (W&B's ``"."``, MLflow's
    ``"./mlruns"``), shared by all its runs: each run's reports replaced the last one's."""
    if not trainer.loggers:
        return trainer.default_root_dir
    first = trainer.loggers[0]
    if isinstance(first, (TensorBoardLogger, CSVLogger)):
        return trainer.log_dir or trainer.default_root_dir
    save_dir = first.save_dir if first.save_dir is not None else trainer.default_root_dir
    version = first.version if isinstance(first.version, str) else f"version_{first.version}"  # as ModelCheckpoint's
    return trainer.strategy.broadcast(os.path.join(save_dir, str(first.name), version))


def same_directory(a: str | None, b: str) -> bool:
    """Whether report directory ``a`` (``None``: no reports) is ``b``: the same place however spelt (:func:`place`: a
    ``file://`` URL is the local path it names, ``file:///x`` is ``/x``; an fsspec cache in front of a URL,
    ``simplecache::s3://b/x``, writes to that URL, ``s3://b/x``; ``s3a://`` is ``s3://``; a final ``/`` is no part).

    Examples:
        >>> same_directory("simplecache::s3://b/x", "s3://b/x/"), same_directory("s3://b/x", "s3://b/y")
        (True, False)
    """
    return a is not None and place(a) == place(b)


_CACHES = "fsspec.implementations.cached."  # fsspec's caching filesystems (simplecache, filecache, blockcache): a layer
_LOCAL = "fsspec.implementations.local.LocalFileSystem"  # file://, local://


def place(path: str) -> str:
    """The place ``path`` writes to, one spelling for each: a local path (or ``file://`` URL, or one behind a cache)
    absolute; a URL less the caching layers in front of it (``simplecache::``, ``filecache::``, ``blockcache::``: they
    hold a copy, the writes reach the URL behind), its protocol by the filesystem it names (``s3a`` and ``s3`` are
    s3fs's, ``gs`` and ``gcs`` gcsfs's) and without a final ``/``. Other chains (``zip://a.csv::s3://b/x.zip``, a
    place inside an archive) keep each of their links.

    Args:
        path: a directory, local or a URL (:func:`~lightning_causal.reporting.json_report.is_url`).

    Examples:
        >>> place("simplecache::s3://b/x/") == place("s3a://b/x") == "s3fs.S3FileSystem://b/x"
        True
        >>> place("filecache::file:///tmp/x") == place("local:///tmp/x/") == place("/tmp/x")
        True
    """
    text = os.fspath(path)
    if not is_url(text):
        return os.path.abspath(local_path(text))
    # fsspec: Lightning's own dependency, imported where used as json_report imports it
    from fsspec.registry import known_implementations

    def named(link: str) -> tuple[str, str]:  # (the filesystem's class, or the protocol where fsspec knows none; the rest)
        protocol, _, rest = link.partition("://")
        return known_implementations.get(protocol, {}).get("class", protocol), rest.rstrip("/")

    links = text.split("::")
    while len(links) > 1 and named(links[0])[0].startswith(_CACHES):
        links = links[1:]
    if len(links) == 1 and (not is_url(links[0]) or named(links[0])[0] == _LOCAL):  # a local directory behind a cache
        return os.path.abspath(local_path(links[0]) if not is_url(links[0]) else links[0].partition("://")[2])
    return "::".join(f"{kind}://{rest}" for kind, rest in map(named, links))


def report_tag(audits: Sequence[Audit]) -> str:
    """The names of ``audits`` joined by ``+``, which name the report files of a later audit callback writing
    to a shared ``report_dir`` (``epoch_0003_<names>.json``)."""
    return "+".join(re.sub(r"[^\w.-]+", "-", a.name) for a in audits)


def check_report_dir(report_dir: str, on_error: str, trainer: Trainer) -> str | None:
    """Write and remove a file in ``report_dir`` on rank 0; every rank learns the outcome. Returns
    ``report_dir``, or ``None`` where it is not writable and ``on_error="warn"`` (reports skipped).

    Raises:
        MisconfigurationException: ``report_dir`` is not writable and ``on_error="raise"``.
    """
    error = None
    if trainer.is_global_zero:
        error = try_write_probe_file(report_dir)
    error = trainer.strategy.broadcast(error, src=0)
    if error is None:
        return report_dir
    message = f"Expected argument `report_dir` to be a writable directory but writing to {report_dir!r} failed: {error}"
    if on_error == "raise":
        raise MisconfigurationException(message)
    warn_at_users_line(f"{message}; JSON reports will be skipped (on_error='warn')")
    return None


def warn_earlier_reports(report_dir: str | None, tag: str, trainer: Trainer) -> None:
    """Reports of the callback's names (``tag``) in ``report_dir`` for epochs this fit may audit (an earlier
    run's, in a reused directory): they would mix with this fit's, replaced where it audits the same
    epoch and left where it does not (another schedule, fewer epochs)."""
    names = list_reports(report_dir) if report_dir is not None and trainer.is_global_zero else None
    if names is None:
        return
    tag = f"_{re.escape(tag)}" if tag else ""
    pattern = re.compile(rf"epoch_(\d+){tag}(?:_fit_end)?\.json")
    start = trainer.current_epoch  # a resumed fit: the reports of the epochs before it are its own
    earlier = sorted({int(m.group(1)) for name in names
                      if (m := pattern.fullmatch(name)) and int(m.group(1)) >= start})
    if earlier:
        warn_at_users_line(f"CausalAuditCallback: `report_dir` {report_dir!r} already holds reports of epochs {earlier} "
                           f"(of an earlier run), at or after the epoch this fit starts at ({start}): this fit replaces those "
                           "of the epochs it audits and leaves the others; pass another `report_dir` to keep runs apart"
                           + _shared_tensorboard_run(report_dir, trainer))


def _shared_tensorboard_run(report_dir: str, trainer: Trainer) -> str:
    """The advice on TensorBoard where ``report_dir`` is the run directory of the fit's ``TensorBoardLogger``: the earlier
    run logged there too, at the epochs and steps this fit counts again (a new ``Trainer`` counts both from 0, as each client
    of each round of federated learning does with one logger), so TensorBoard draws both runs as one zigzag series."""
    logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
    if logger is None or not same_directory(report_dir, os.path.join(logger.log_dir, "causal_audit")):
        return ""
    return (f". Its TensorBoard run, {logger.log_dir!r}, holds that run's values of those epochs too, and this fit logs its own "
            f"beside them (a new Trainer counts epochs and steps from 0 again; this one from step {trainer.global_step}): "
            "TensorBoard draws the two runs as one series that goes back and forth. Give each fit a logger of its own "
            "(`TensorBoardLogger(save_dir, name=..., version=...)`), or, for one model trained on in several fits (rounds "
            "of federated learning), keep its Trainer and raise `trainer.fit_loop.max_epochs` before the next `fit`: its "
            "epochs and steps go on")
