"""Pure tests, no I/O: one file per module of services/, named after it."""
