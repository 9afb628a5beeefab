"""aestudio: a desktop studio for exploring, denoising and segmenting images with autoencoders."""

__version__ = "0.1.0"
