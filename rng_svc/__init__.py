"""Seeds, commit-reveal fairness proofs, unbiased draws and shuffles, the signed audit log."""
