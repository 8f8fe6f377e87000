"""The running system for tests and the bench: databases, vhosts, processes, gateway, peers."""
