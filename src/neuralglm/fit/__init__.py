"""Solvers: IRLS for GLMs; gradient training for networks."""
