"""`python -m server`: the same as the `tui-collab-server` command."""

import sys

from tui_collab.server_package import server_main

sys.exit(server_main())
