"""Torch-free stage definitions, one module per family; `chain.registry` collects them."""
