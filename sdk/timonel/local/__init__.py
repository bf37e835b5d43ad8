"""``timonel local``: the slice of Kubernetes and KServe that Timonel drives, on one machine.

The API server (``timonel.local.apiserver``) stores InferenceServices; the controller
(``timonel.local.controller``) reconciles each one as KServe does, running one ``timonel serve``
process per revision.
"""
