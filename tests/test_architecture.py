"""The layers of docs/ARCHITECTURE.md hold in the code: import-linter's contracts in
pyproject.toml pass, an upward import breaks them, and no module imports itself in a cycle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from conftest import ROOT

LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"


def lint(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([LINT, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_layer_contracts_are_kept():
    result = lint(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, upward", [
    ("nmt/text/casing.py", "from nmt.decode import search"),   # text must not read decode
    ("nmt/models/rnn.py", "import nmt.train.loop"),            # models must not read training
    ("nmt/decode/search.py", "import fastapi"),                # the library never imports the web
])
def test_an_upward_import_breaks_a_contract(tmp_path, module, upward):
    for package in ("nmt", "serve"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{upward}  # noqa\n", encoding="utf-8")
    result = lint(tmp_path, tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout


def test_no_module_is_in_an_import_cycle():
    graph = grimp.build_graph("nmt", "serve")
    cycles = sorted(f"{a} -> {b} -> ... -> {a}"
                    for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                    if graph.chain_exists(importer=b, imported=a))
    assert not cycles, "\n".join(cycles)
