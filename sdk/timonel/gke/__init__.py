"""GKE's side of serving: the GPUs it sells, how a pod lands on them, and the plan for a cluster."""
