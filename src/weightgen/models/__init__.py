"""The trainable models behind the methods (each method in ``weightgen.methods`` adapts one of
these to the training loop)."""
