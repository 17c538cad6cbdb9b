"""``local``: priors, then CFOG template matching tile by tile, coarse to fine, through the
current field into a dense field (Gaussian normalised convolution by default), kept only when it
matches the images better than zero shift."""

from models.methods.local.config import LocalConfig
from models.methods.local.method import LocalMethod
from models.methods.local.verify import structural_agreement

__all__ = ["LocalConfig", "LocalMethod", "structural_agreement"]
