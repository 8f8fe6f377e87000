"""Dispatcher service: consume events, deliver signed webhooks, retry, record every attempt."""
