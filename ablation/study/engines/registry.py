"""The engines by --engine's name: a new engine is its module and one entry here."""
from __future__ import annotations

from ablation.study.engines.dvc_queue import DvcQueue
from ablation.study.engines.ray import RayCluster

ENGINES = {engine.name: engine for engine in (DvcQueue, RayCluster)}
DEFAULT = DvcQueue.name
