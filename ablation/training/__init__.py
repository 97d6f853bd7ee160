"""Training and evaluating one run: input pipelines, the recipe (optimizers,
schedules), callbacks, fit, evaluate. Imports ablation.core, .data and .nets."""
