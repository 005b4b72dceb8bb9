"""Test support: generated image folders and an independent PyTorch reference."""
