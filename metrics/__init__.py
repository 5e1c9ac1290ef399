"""Exact latency samples, their merge across workers, SLO evaluation and generator health."""
