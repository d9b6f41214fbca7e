"""Report locations (carried faults): ``same_directory("file:///x", "/x")`` was False (the ``file://`` URL was made an
absolute path under the working directory, ``<cwd>/file:/x``), so two callbacks writing to one directory, one given it
as a URL, were not told apart by their report tags; and fsspec's chained URLs (``simplecache::s3://bucket/x``) were
read as local paths: the report was written to a local directory ``simplecache::memory:/...`` of the working
directory, not through fsspec."""

from __future__ import annotations

import uuid

import fsspec
import pytest

from lightning_causal.audits import AuditResult
from lightning_causal.callbacks._report_dir import same_directory
from lightning_causal.reporting.json_report import (
    is_url,
    list_reports,
    load_report,
    try_write_probe_file,
    write_report,
)


def test_a_file_url_and_its_local_path_are_one_directory(tmp_path):
    d = tmp_path / "reports"
    assert same_directory(f"file://{d}", str(d)) and same_directory(str(d), f"file://{d}/")
    assert not same_directory(f"file://{d}", str(tmp_path / "other"))
    assert not same_directory(f"file://{d}", f"memory://{d}")


@pytest.mark.parametrize("chain", ["simplecache", "filecache"])
def test_chained_urls_are_written_and_read_through_fsspec(tmp_path, monkeypatch, chain):
    monkeypatch.chdir(tmp_path)  # a URL read as a local path made a directory here
    root = f"/fixes_report_{uuid.uuid4().hex}"
    url = f"{chain}::memory://{root}/causal_audit"
    assert is_url(url) and not is_url("logs/a::b")
    try:
        assert try_write_probe_file(url) is None
        path = write_report(url, 3, "epoch_end", [AuditResult("toy", scalars={"z": 0.5})])
        assert path == f"{url}/epoch_0003.json"
        assert list(tmp_path.iterdir()) == []  # nothing written locally
        assert fsspec.filesystem("memory").ls(f"{root}/causal_audit", detail=False) == [f"{root}/causal_audit/epoch_0003.json"]
        assert list_reports(url) == ["epoch_0003.json"]
        assert load_report(path)["audits"]["toy"]["scalars"] == {"z": 0.5}
        assert same_directory(url + "/", url) and not same_directory(url, f"memory://{root}/other")
    finally:
        fsspec.filesystem("memory").rm(root, recursive=True)
