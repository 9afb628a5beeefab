"""Qt-free exploration logic the panels and the CLI drive: image metrics, latent codes, masks, folder jobs.

Nothing here imports Qt (import-linter). Import submodules directly.
"""
