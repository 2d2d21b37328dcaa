"""Package version and the versions every report states."""

from __future__ import annotations

import platform
from importlib import metadata

__all__ = ["__version__", "environment_versions"]

try:
    __version__ = metadata.version("froc")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"


def environment_versions() -> dict[str, str]:
    """Versions of froc, Python and the numerical libraries, for reproducibility."""
    import numpy
    import pandas
    import sklearn
    import torch

    return {
        "froc": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
    }
