"""``python -m containers_storage.cli``: the same as the console script."""

import sys

from .main import main

sys.exit(main())
