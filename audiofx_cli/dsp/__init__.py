"""Pure DSP: designs (scipy, float64) and tensor kernels, one family per file."""
