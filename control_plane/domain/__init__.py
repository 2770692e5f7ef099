"""Pure rules of the control plane: no I/O, unit-testable."""
