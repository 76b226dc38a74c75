"""`python -m tui_collab`: the same as the `tui-collab` command."""

import sys

from tui_collab.cli import main

sys.exit(main())
