"""One report directory spelt two ways (carried fault): ``same_directory("simplecache::s3://b/x", "s3://b/x")`` was
False (URLs were compared as strings), so two audit callbacks writing to one place, one through fsspec's cache, were
not told apart by their report tags, and their reports of one epoch replaced each other. A place is now compared less
its caching layers, with the protocol by the filesystem it names and without a final ``/``."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from lightning_causal.audits import InputEffectAudit, UnitImportanceAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.callbacks._report_dir import place, same_directory


@pytest.mark.parametrize(("a", "b"), [
    ("simplecache::s3://b/x", "s3://b/x"), ("filecache::s3://b/x/", "s3://b/x"), ("blockcache::gs://b/x", "gcs://b/x"),
    ("s3a://b/x", "s3://b/x"), ("simplecache::file:///tmp/r", "/tmp/r"), ("local:///tmp/r", "file:///tmp/r/"),
])
def test_spellings_of_one_place_are_one_directory(a, b):
    assert same_directory(a, b) and same_directory(b, a)


@pytest.mark.parametrize(("a", "b"), [
    ("simplecache::s3://b/x", "s3://b/y"), ("simplecache::s3://b/x", "gs://b/x"), ("s3://b/x", "/b/x"),
    ("zip://x::s3://b/a.zip", "s3://b/a.zip"),  # a place inside an archive is not the archive
])
def test_different_places_stay_apart(a, b):
    assert not same_directory(a, b)


def test_a_second_callback_through_a_cache_names_its_reports():
    root = f"memory:///fixes_figures_{uuid.uuid4().hex}/causal_audit"
    first = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe_size=4, report_dir=root)
    second = CausalAuditCallback([UnitImportanceAudit(["fc"])], probe_size=4, report_dir=f"simplecache::{root}/")
    trainer = SimpleNamespace(callbacks=[first, second], fast_dev_run=False)
    assert first._shared_report_tag(trainer) == "" and second._shared_report_tag(trainer) == "unit_importance"
    assert place(f"simplecache::{root}/") == place(root) == "fsspec.implementations.memory.MemoryFileSystem://" + root[len("memory://"):]
