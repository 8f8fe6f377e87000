"""The webhook system: registration, upload and dispatcher services and their shared code."""
