"""The networks: units, blocks, norms and shortcut forms as layer factories in
tables, architectures with their stems, the builder and what describe reports.
Imports no other package of ablation."""
