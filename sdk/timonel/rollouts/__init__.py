"""Progressive rollouts (named in the plural so the package does not shadow the public function
``timonel.rollout``): a new release takes traffic step by step, and each step's evidence
(errors, latency, and whether it answers like the stable release) promotes it or rolls it back."""
