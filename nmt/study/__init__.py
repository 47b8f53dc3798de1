"""The lecture's claims measured on our own models (``nmt study``): each experiment writes JSON,
a figure and a section of ``reports/study/README.md``."""
