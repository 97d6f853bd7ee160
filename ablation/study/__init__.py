"""A study: its grid of arms, presets and names, collecting their runs, raw records,
the dry run, verify, rounds until decided, how a study decides (deciding/) and
the engines that run the arms (engines/). Imports ablation.core, .data, .nets and .training, never .report."""
