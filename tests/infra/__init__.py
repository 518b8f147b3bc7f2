"""infra/: the stack and its checks, the SSM document, the LB scripts, the operator's tools."""
