"""Upload service: receive files, store them, record the `upload.completed` event."""
