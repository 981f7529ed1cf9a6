"""`python -m shared.cli`: the same command as `assistant`."""
from shared.cli import main

main()
