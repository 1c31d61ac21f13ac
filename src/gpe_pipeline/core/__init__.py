"""Plain PyTorch core of the GPE method: losses, models, the training loop, latents and data readers.

Nothing here imports Kedro, so every piece works from a notebook or a script.
"""
