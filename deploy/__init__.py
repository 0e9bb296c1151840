"""Deployment files for K2's containers, and the Python that generates some of them (dashboards)."""
