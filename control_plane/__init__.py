"""Cloud control plane: registry, discovery, KYC, deposits, withdrawals + AML, payout rails,
journal consumer with global audit, checkpoints. See docs/CONTROL_PLANE.md."""
