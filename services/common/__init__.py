"""Code shared by every service: settings, database, broker, logging, metrics, HTTP envelope."""
