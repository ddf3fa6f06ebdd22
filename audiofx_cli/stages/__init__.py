"""nn.Module stages, thin wrappers over `audiofx_cli.dsp`, one file per family."""
