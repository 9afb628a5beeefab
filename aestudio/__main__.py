import sys

from aestudio.cli import main

sys.exit(main())
