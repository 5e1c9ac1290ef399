"""Locust User classes, one module per component group."""
