"""What every stage shares: params and their knobs, the file layout, atomic files,
errors, statistics, run records, the machine and its precision. Imports nothing
else of ablation."""
