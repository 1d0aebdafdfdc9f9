"""Training: recipes (config), what a run is made of (run), its progress and resume (state), the loop, the
teacher stage, what keeps a run safe (guards), visible (progress) and alone in its folder (runlock)."""
