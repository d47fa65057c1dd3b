"""Spiking synaptic penalty: neurons, models, ψ, energy, penalties, training, scoring.

Importing the package pins the float numerics of the libraries torch calls (`pipeline.numerics`), before
this process's first tensor operation, so a run gives the same bits on every x86-64 CPU with AVX2.
"""
from pipeline.numerics import pin_environment

pin_environment()
