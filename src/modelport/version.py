"""The package's version and where its files are, for the parts below the facade.

``modelport.__version__`` re-exports :data:`__version__`; parts inside the package import it from
here, never from the package root.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

PACKAGE_DIR = Path(__file__).resolve().parent  # .../modelport (the folder of this file)
