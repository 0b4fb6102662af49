"""Prometheus metrics (prometheus-client): the :class:`Metrics` port, and its exposition.

``metrics`` imports prometheus-client; ``multiprocess`` does not, because the variable that puts
prometheus-client in multi-process mode must be set before prometheus-client is first imported.
"""
