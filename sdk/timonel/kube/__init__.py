"""The Kubernetes side: requests as plain values, the client that sends them, and the operations
(deploy, canary, promote, rollback, status, wait) built on them."""
