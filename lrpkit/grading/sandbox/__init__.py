"""What confines a run: bubblewrap, limits, seccomp, cgroups, forked processes."""
