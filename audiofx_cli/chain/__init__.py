"""Chain specs: parameter declarations, the stage registry, YAML parsing and building."""
