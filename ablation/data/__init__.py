"""From a dataset's source to TFRecord shards and a seeded split: the datasets
table, the sources (tfds, an image folder), shards, splitting. Imports ablation.core."""
