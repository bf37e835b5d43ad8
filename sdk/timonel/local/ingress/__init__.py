"""``timonel local``'s ingress: the gateway, activator and queue-proxy a cluster gets from Knative.

``routes`` (pure) turns InferenceService statuses into a routing table; ``router`` listens on the
ingress port and proxies REST and gRPC by Host (``http1``: plain HTTP/1.1 requests as bytes);
``activator`` holds requests for a revision at zero while it starts, stops idle ones and scales
busy ones with Knative's KPA (``timonel.local.autoscaler``); ``mirror`` copies a share of requests
to another revision and compares the answers; ``metrics`` counts requests under queue-proxy's
names.
"""
