import sys

from gwsreplay.cli import main

sys.exit(main())
