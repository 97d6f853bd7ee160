"""The engines that run a study's arms, one module each behind engines.base.Engine:
dvc_queue (DVC's local queue, the default) and ray (a Ray cluster, runs in clones
of the baseline: remote). `--engine` picks one by its name."""
