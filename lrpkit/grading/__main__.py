"""``python -m lrpkit.grading``: the grader's command line (lrpkit.grading.cli)."""

import sys

from lrpkit.grading.cli import main

sys.exit(main())
