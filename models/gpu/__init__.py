"""Torch versions of the dense kernels (CFOG, template NCC) for a GPU or the CPU."""

from models.gpu.cfog import cfog_torch
from models.gpu.ncc import match_templates_torch, ncc_surfaces_torch

__all__ = ["cfog_torch", "match_templates_torch", "ncc_surfaces_torch"]
