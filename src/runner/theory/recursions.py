"""The infinite-width theory's functions under the one name older code imports them by.

The theory lives in modules of their own: runner.theory.gaussian (Gaussian expectations),
runner.theory.kernels (the kernel recursion, susceptibilities, fixed points), runner.theory.
finite_width (the four-point vertex and the 1/n-corrected kernel), runner.theory.criticality
(universality class, critical initialization) and runner.theory.ntk (the neural tangent kernel).
"""

from runner.theory.criticality import Criticality, critical_init
from runner.theory.finite_width import excess_kurtosis, kernel_flow_nlo, vertex_flow
from runner.theory.gaussian import gaussian_expectation
from runner.theory.kernels import (chi_par, chi_perp, fixed_points, kernel_flow, kernel_map, lowest_fixed_point,
                                   repu_chi_par, repu_chi_perp, repu_chi_ratio, repu_kernel_map)

__all__ = ["Criticality", "critical_init", "excess_kurtosis", "kernel_flow_nlo", "vertex_flow", "gaussian_expectation",
           "chi_par", "chi_perp", "fixed_points", "kernel_flow", "kernel_map", "lowest_fixed_point", "repu_chi_par",
           "repu_chi_perp", "repu_chi_ratio", "repu_kernel_map"]
