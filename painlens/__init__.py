"""What people run: the ``painlens`` command line (``painlens.cli``), the HTTP API (``painlens.api``) and the
batch front end of ``painlens predict`` (``painlens.batch``).

The layers point one way: ``painlens`` may import ``dashboard`` and ``engine``; ``dashboard`` imports
``engine`` only; ``engine`` (the library: everything that computes) imports neither
(``tests/test_imports.py`` reads every import and checks it).
"""
