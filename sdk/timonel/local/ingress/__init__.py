"""``timonel local``'s ingress: the gateway, activator and queue-proxy a cluster gets from Knative.

``routes`` (pure) turns InferenceService statuses into a routing table; ``router`` listens on the
ingress port and proxies REST and gRPC by Host; ``activator`` holds requests for a revision at
zero while it starts and stops idle ones; ``mirror`` copies a share of requests to another
revision and compares the answers; ``metrics`` counts requests under queue-proxy's names.
"""
