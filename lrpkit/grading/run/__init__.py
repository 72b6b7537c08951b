"""One submission's run: the graded notebook, pytest's plugin, the kernel's guard, scoring."""
