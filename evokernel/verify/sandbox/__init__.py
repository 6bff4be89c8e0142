"""Process isolation for candidates: confinement in the child, worker pools in the parent."""
