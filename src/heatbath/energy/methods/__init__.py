"""Energy methods: how each `--method` turns a target into weighted samples."""
