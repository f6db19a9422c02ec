"""docs/ir.md: its code runs, its example is a real file, it names every rule and field."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from model.ir import fileformat
from model.ir.canonical import arrays_of, header_of
from model.ir import RULES, save
from .helpers import DOC, VARIANTS, example_net, indep_digest, read_raw, write_raw


# --------------------------------------------------------------------------------------------
# docs/ir.md

def _code_blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_doc_lines_fit_100_columns():
    long = [i for i, l in enumerate(DOC.read_text().splitlines(), 1) if len(l) > 100]
    assert not long, f"lines over 100 columns: {long}"


def test_doc_reader_snippet(tmp_path):
    [reader] = [b for b in _code_blocks("python") if "def read_ir" in b]
    assert len(reader.strip().splitlines()) <= 20
    assert re.findall(r"^(?:import|from) (\w+)", reader, flags=re.M) == ["json", "numpy"]
    scope = {}
    exec(compile(reader, "docs/ir.md:read_ir", "exec"), scope)
    for name, net in VARIANTS.items():
        p = save(net, tmp_path / f"{name}.npz")
        header, arrays = scope["read_ir"](p)
        assert header["digest"] == net.digest and header["name"] == net.name
        for k, (ph, proj) in enumerate(zip(header["projections"], net.projections)):
            assert np.array_equal(arrays[ph["weight"]], proj.weight)
            assert np.array_equal(arrays[ph["delay"]], proj.delay)
            assert arrays[ph["weight"]].dtype == np.int64
    bad = write_raw(tmp_path / "bad.npz", {"format": "other", "version": 1}, {}, resign=False)
    with pytest.raises(ValueError):
        scope["read_ir"](bad)


def test_doc_digest_snippet(tmp_path):
    [code] = [b for b in _code_blocks("python") if "def ir_digest" in b]
    assert set(re.findall(r"^import (.*)$", code, flags=re.M)) == {"hashlib, json",
                                                                   "numpy as np"}
    scope = {}
    exec(compile(code, "docs/ir.md:ir_digest", "exec"), scope)
    for name, net in VARIANTS.items():
        p = save(net, tmp_path / f"{name}.npz")
        header, arrays = read_raw(p)
        assert scope["ir_digest"](header, arrays) == header["digest"] == net.digest
        assert indep_digest(header, arrays) == net.digest


def test_doc_example_header():
    [example] = _code_blocks("json")
    doc_header = json.loads(example)
    net = example_net()
    assert doc_header == {**header_of(net), "digest": net.digest}
    assert doc_header["digest"] == indep_digest(doc_header, arrays_of(net))
    # the arrays table of the doc lists what the example saves
    text = DOC.read_text()
    for name, a in arrays_of(net).items():
        assert f"| `{name}` | int8 | `{a.tolist()}`" in text, name


def test_doc_names_every_rule_and_field():
    text = DOC.read_text()
    for rule in RULES:
        assert f"`{rule.__name__.removeprefix('rule_').replace('_', '-')}`" in text
    for spec in (fileformat._TOP_FIELDS, fileformat._INPUT_FIELDS, fileformat._LIF_FIELDS,
                 fileformat._PROJ_FIELDS):
        for field in spec:
            assert f"- `{field}`," in text, field
    for rule in ("file", "format", "version", "missing-field", "unknown-field", "field-type",
                 "integer-dtype", "integer-range", "digest", "shape", "reset-mode",
                 "projection-kind", "integer-field"):
        assert f"`{rule}`" in text, rule


def test_doc_python_building_example_runs(tmp_path, monkeypatch):
    [block] = [b for b in _code_blocks("python") if "from model.ir import" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/ir.md:building", "exec"), {})
    from model.ir import load
    net = load(tmp_path / "example.npz")
    header, _ = read_raw(tmp_path / "example.npz")
    assert net.name == "example" and header["digest"] == example_net().digest
