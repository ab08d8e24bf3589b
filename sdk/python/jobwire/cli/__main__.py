"""`python -m jobwire.cli`: the `jobwire` command without the console script."""

import sys

from jobwire.cli import main

sys.exit(main())
