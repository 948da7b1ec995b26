"""``python -m nervenet ...`` runs the command line (see ``nervenet.cli``)."""

import sys

from nervenet.cli import main

if __name__ == "__main__":  # not when imported (pytest --doctest-modules imports every module)
    sys.exit(main())
