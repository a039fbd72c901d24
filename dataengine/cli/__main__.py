"""`python -m dataengine.cli`: the same command line as `dataengine`."""

import sys

from dataengine.cli import main

sys.exit(main())
