"""Tensors ⇄ TF Serving's wire formats (REST JSON, TensorProto) and its status codes: shared by the
client and the server, so both sides read and write the same bytes the same way."""
