"""Fixtures of the batch-validation tests.

The builders in ``helpers.py`` are loaded by path and registered as the
module ``batch_validation_helpers``, because the tests are no package
(pytest runs with --import-mode=importlib); pytest imports this file
before the test modules of the folder.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_spec = importlib.util.spec_from_file_location("batch_validation_helpers", HERE / "helpers.py")
_helpers = importlib.util.module_from_spec(_spec)
sys.modules["batch_validation_helpers"] = _helpers
_spec.loader.exec_module(_helpers)
