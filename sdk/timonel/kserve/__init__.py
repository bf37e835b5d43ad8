"""KServe's side of serving: its vocabulary, its admission rules, the InferenceService a ServingSpec
renders to, its CRD schemas, and the cluster manifests (runtime, RBAC) Timonel ships."""
