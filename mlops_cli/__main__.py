"""`python -m mlops_cli …` is the `mlops` command (how services and tests start it)."""

from mlops_cli.cli.main import main

main()
