"""``python -m fstat``: the tour of every family (see :mod:`fstat.demo`)."""

import sys

from .demo import main

if __name__ == "__main__":
    sys.exit(main())
