"""Estimators that turn samples into numbers with standard errors."""
