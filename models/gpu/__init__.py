"""Torch versions of the dense kernels (CFOG, template NCC, Gaussian sums) for a GPU or CPU."""

from models.gpu.cfog import cfog_torch
from models.gpu.gaussian import splat_blur_torch
from models.gpu.ncc import match_templates_torch, ncc_surfaces_torch

__all__ = ["cfog_torch", "match_templates_torch", "ncc_surfaces_torch", "splat_blur_torch"]
