"""Measuring trained models: IKEA reconstruction, generation quality, feature classification, latent pictures."""
