"""`python -m dockyard.daemon [dockerd flags]`."""

import sys

from dockyard.daemon.main import main

sys.exit(main())
