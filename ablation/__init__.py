"""Ablation studies of deep networks: the ResNet paper's residual-vs-plain study.

The packages follow the pipeline, and each imports only from those above it here:

    core      params, knobs, layout, atomic files, errors, statistics, run records, machine, a new project
    data      the datasets table, sources (tfds, folder), TFRecord shards, splitting
    nets      units, blocks, norms and architectures as tables; the builder; describe
    training  input pipelines, optimizers and schedules, callbacks, fit, evaluate
    study     arms and their grid, collecting, raw records, dry run, verify, rounds; deciding/, engines/
    report    the arm report, the study report, effects, claims, figures, published numbers
    cli       the `ablate` command: the pipeline's stages, the study, init
"""
