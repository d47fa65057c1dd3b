"""Spiking synaptic penalty: neurons, models, ψ, energy, penalties, training, scoring."""
