"""``python -m pinrelay_cli``: the ``pinrelay`` command."""

import sys

from pinrelay_cli.main import main

sys.exit(main())
