"""The composition root: the one-process dev gateway, the nginx gateway and the process stack."""
