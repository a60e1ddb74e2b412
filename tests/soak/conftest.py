"""tests/soak: `soak` (the tool) importable by the on-demand pytest wrapper."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
