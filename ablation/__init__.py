"""Ablation studies of deep networks: the ResNet paper's residual-vs-plain study.

One module per concern: params, data, models, training, evaluation,
reporting, statistics.
"""
