"""Unit tests run the layer's code directly: put layers/shared on the import path."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "layers" / "shared"))
