"""``python -m painlens``: the command line, as the ``painlens`` entry point runs it."""

from painlens.cli import main

main()
