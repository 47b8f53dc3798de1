"""Scoring with sacreBLEU, robustness sets and evaluation reports (``nmt evaluate``)."""
