"""Training: recipes (config), what a run is made of (run), its progress (state), the loop, the teacher
stage, and what keeps a run safe (guards)."""
