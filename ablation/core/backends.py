"""The Keras backends the suite trains on, and how to install the optional ones.
Which one a study uses is ablation/study/backend_choice.py's."""
from __future__ import annotations

import importlib.util

BACKENDS = ("tensorflow", "jax", "torch")  # each is also the module it imports
# How to install each optional backend. torch: its CPU wheel, as PyPI's default Linux
# wheel carries CUDA (several GB).
INSTALL = {"torch": "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
           "jax": "pip install jax==0.10.2 jaxlib==0.10.2"}


def installed() -> list[str]:
    return [name for name in BACKENDS if importable(name)]


def importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install, or an import hook that refuses it
        return False
