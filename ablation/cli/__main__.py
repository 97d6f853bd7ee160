"""`python -m ablation.cli COMMAND`: the same as `ablate COMMAND`, for an environment whose scripts are not on PATH."""
from ablation.cli.main import main

main()
