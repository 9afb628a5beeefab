"""Qt-free data: image IO, dataset specs, noise. Import submodules directly."""
