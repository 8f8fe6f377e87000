"""Ingest: POST /upload_file/webhook_id/{id} and POST /event, each recorded with its outbox row."""
