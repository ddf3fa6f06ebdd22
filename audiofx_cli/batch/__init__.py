"""Batch processing: finding inputs, planning outputs, running files locally or on Ray."""
