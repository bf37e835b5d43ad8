import sys

from timonel.cli import main

sys.exit(main())
